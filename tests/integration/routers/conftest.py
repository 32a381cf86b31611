"""A real HAProxy per test, with stdlib "versions" behind it; everything is stopped after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.ports.routers import Backend, RouteRef
from tests.support.sample_service import make_artifact

BACKEND = Path(__file__).with_name("backend.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def start_backend() -> Iterator[Callable[..., Backend]]:
    """start_backend("v1", error_rate=0.2, delay_ms=0) → Backend("v1", ("127.0.0.1:PORT",))."""
    procs: list[subprocess.Popen[str]] = []

    def start(
        name: str, error_rate: float = 0.0, instances: int = 1, delay_ms: float = 0.0
    ) -> Backend:
        addresses = []
        for _ in range(instances):
            proc = subprocess.Popen(
                [sys.executable, str(BACKEND), name, str(error_rate), str(delay_ms)],
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            addresses.append(f"127.0.0.1:{port}")
        return Backend(name, tuple(addresses))

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def start_sample(tmp_path: Path) -> Iterator[Callable[..., Backend]]:
    """start_sample("v2", error_rate=0.3) → the sample service's artifact, unpacked and running."""
    procs: list[subprocess.Popen[str]] = []

    def start(name: str, **knobs: float) -> Backend:
        where = tmp_path / "samples" / name
        with tarfile.open(make_artifact(where, name, **knobs)) as tar:
            tar.extractall(where / "app", filter="data")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SAMPLE_", "SHIPYARD_"))}
        proc = subprocess.Popen(
            [sys.executable, "sample_service.py"],
            cwd=where / "app",
            env={**env, "PORT": "0"},
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        address = proc.stdout.readline().split()[-1]  # "sample service on 127.0.0.1:PORT"
        return Backend(name, (address,))

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def route(tmp_path: Path) -> RouteRef:
    return RouteRef("shop", "prod", tmp_path / "router", free_port())


@pytest.fixture
def router(route: RouteRef) -> Iterator[HaproxyRouter]:
    made = HaproxyRouter()
    yield made
    made.stop(route)
