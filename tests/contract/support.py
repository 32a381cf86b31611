"""What the router contracts share: stdlib backends and one real HAProxy per test module.

The backends are ``tests/integration/routers/backend.py`` processes (they answer with their name);
a module starts them once and stops them after, by their own Popen handles.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.ports.routers import Backend, RouteRef
from tests.integration.routers.conftest import BACKEND, free_port


@dataclass
class Backends:
    """Started backends by name; ``stop`` ends exactly the processes started here."""

    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    by_name: dict[str, Backend] = field(default_factory=dict)

    def start(self, name: str, *, instances: int = 1, error_rate: float = 0.0) -> Backend:
        addresses = []
        for _ in range(instances):
            proc = subprocess.Popen(
                [sys.executable, str(BACKEND), name, str(error_rate)],
                stdout=subprocess.PIPE,
                text=True,
            )
            self.procs.append(proc)
            assert proc.stdout is not None
            addresses.append(f"127.0.0.1:{int(proc.stdout.readline())}")
        self.by_name[name] = Backend(name, tuple(addresses))
        return self.by_name[name]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()


@dataclass
class RealHaproxy:
    """One HAProxy (one route) and its backends, shared by a module's tests."""

    router: HaproxyRouter
    route: RouteRef
    backends: Backends


@contextmanager
def real_haproxy(state_dir: Path, **backends: tuple[int, float]) -> Iterator[RealHaproxy]:
    """``real_haproxy(dir, v1=(instances, error_rate), ...)``: started, and stopped after."""
    started = Backends()
    router = HaproxyRouter(ready_timeout=5.0)
    route = RouteRef("contract", "prod", state_dir, free_port())
    try:
        for name, (instances, error_rate) in backends.items():
            started.start(name, instances=instances, error_rate=error_rate)
        router.ensure(route)
        yield RealHaproxy(router, route, started)
    finally:
        router.stop(route)
        started.stop()
