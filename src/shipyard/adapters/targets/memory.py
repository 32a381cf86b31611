"""A target that only remembers what it was told: for unit tests of the use cases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from shipyard.adapters.targets.verify import verify_artifacts
from shipyard.errors import AdapterError
from shipyard.ports.targets import Deployed, DeploySpec, Instance


class MemoryTarget:
    kind: ClassVar[str] = "memory"
    live: ClassVar[dict[tuple[str, str], set[str]]] = {}
    unhealthy: ClassVar[set[str]] = set()  # candidates that never become healthy

    def deploy(self, spec: DeploySpec) -> Deployed:
        verify_artifacts(spec)
        if spec.candidate in self.unhealthy:
            raise AdapterError(f"{spec.candidate} did not become healthy")
        self.live.setdefault((spec.project, spec.environment), set()).add(spec.candidate)
        return Deployed(
            spec.candidate, (Instance(spec.candidate, "memory"),), "deployed in memory\n"
        )

    def retire(self, spec: DeploySpec, candidate: str) -> None:
        self.live.get((spec.project, spec.environment), set()).discard(candidate)

    def running(self, project: str, environment: str, state_dir: Path) -> Sequence[Instance]:
        return [Instance(c, "memory") for c in sorted(self.live.get((project, environment), set()))]

    def close(self) -> None:
        return None
