"""A target that only remembers what it was told: for unit tests of the use cases.

State is kept on the class (shared by every instance, as the services make their own), so a test
sets it up and inspects it directly; call ``MemoryTarget.reset()`` between tests.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from shipyard.adapters.targets.verify import verify_artifacts
from shipyard.errors import AdapterError, ErrorCode, IntegrityError
from shipyard.ports.targets import Deployed, DeploySpec, Instance


def address(candidate: str) -> str:
    """A stable, valid-looking address per candidate, so routers can be given a plan."""
    return f"127.0.0.1:{20000 + zlib.crc32(candidate.encode()) % 20000}"


class MemoryTarget:
    kind: ClassVar[str] = "memory"
    live: ClassVar[dict[tuple[str, str], set[str]]] = {}  # (project, environment) -> candidates
    unhealthy: ClassVar[set[str]] = set()  # candidates that never become healthy
    mismatch: ClassVar[set[str]] = set()  # candidates whose artifacts "differ" from the record
    deploys: ClassVar[list[DeploySpec]] = []  # every deploy asked for, in order, even failed ones
    retired: ClassVar[list[tuple[str, str, str]]] = []  # (project, environment, candidate)

    @classmethod
    def reset(cls) -> None:
        cls.live.clear()
        cls.unhealthy.clear()
        cls.mismatch.clear()
        cls.deploys.clear()
        cls.retired.clear()

    def deploy(self, spec: DeploySpec) -> Deployed:
        self.deploys.append(spec)
        if spec.candidate in self.mismatch:
            a = spec.artifacts[0] if spec.artifacts else None
            name, expected = (a.name, a.digest) if a else ("artifact", "sha256:unknown")
            actual = "sha256:" + "0" * 64
            raise IntegrityError(
                f"artifact {name} of {spec.candidate}: expected {expected}, got {actual}; "
                f"{spec.from_candidate or 'the previous version'} keeps serving",
                code=ErrorCode.DIGEST_MISMATCH,
                details={"name": name, "expected": expected, "actual": actual},
            )
        verify_artifacts(spec)
        if spec.candidate in self.unhealthy:
            raise AdapterError(
                f"{spec.candidate} did not become healthy; "
                f"{spec.from_candidate or 'the previous version'} keeps serving"
            )
        self.live.setdefault((spec.project, spec.environment), set()).add(spec.candidate)
        return Deployed(
            spec.candidate,
            (Instance(spec.candidate, address(spec.candidate)),),
            "deployed in memory\n",
        )

    def retire(self, spec: DeploySpec, candidate: str) -> None:
        self.retired.append((spec.project, spec.environment, candidate))
        self.live.get((spec.project, spec.environment), set()).discard(candidate)

    def running(self, project: str, environment: str, state_dir: Path) -> Sequence[Instance]:
        return [
            Instance(c, address(c)) for c in sorted(self.live.get((project, environment), set()))
        ]

    def configured(self, settings: Mapping[str, Any]) -> int | None:
        return 1  # one instance per candidate, whatever the settings say

    def close(self) -> None:
        return None
