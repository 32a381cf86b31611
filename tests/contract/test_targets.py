"""What every deploy target promises (ports.targets.DeployTarget), checked on each implementation.

- memory: remembers candidates per (project, environment); the use-case tests' stand-in.
- local: real processes of the sample service on 127.0.0.1.
- command: user commands; here a deploy command that appends the candidate to a file. Its
  semantics differ in one place: it cannot stop anything itself (the user's deploy command
  replaces the old version), so running() reports only the candidate of the last successful
  deploy, and retire() is a no-op. "retire removes the old candidate from running()" holds all
  the same, because the old one left running() when the new one was deployed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters.artifacts.local import sha256_file
from shipyard.adapters.targets.command import CommandTarget
from shipyard.adapters.targets.local import LocalTarget
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.errors import AdapterError, ErrorCode, IntegrityError
from shipyard.ports.targets import ArtifactFile, DeployMode, DeploySpec, DeployTarget
from tests.support.sample_service import START, make_artifact

KINDS = ["memory", "local", "command"]


@dataclass
class Harness:
    kind: str
    target: DeployTarget
    root: Path
    project: str
    settings: dict[str, Any]
    unhealthy: dict[str, Any] = field(default_factory=dict)  # settings for a failing version

    @property
    def state_dir(self) -> Path:
        return self.root / "env" / self.project / "staging"

    def spec(
        self, candidate: str, version: str, *, from_candidate: str | None = None, **knobs: Any
    ) -> DeploySpec:
        artifact = make_artifact(self.root / "artifacts" / candidate, version, **knobs)
        return DeploySpec(
            project=self.project,
            environment="staging",
            candidate=candidate,
            version=version,
            sha="0" * 40,
            mode=DeployMode.DEPLOY,
            from_candidate=from_candidate,
            artifacts=(ArtifactFile(artifact.name, sha256_file(artifact), artifact),),
            settings=dict(self.settings),
            state_dir=self.state_dir,
        )

    def running(self) -> list[str]:
        return sorted(
            i.candidate for i in self.target.running(self.project, "staging", self.state_dir)
        )

    def files(self) -> dict[str, bytes]:
        """Every byte the target keeps for the environment: unchanged means nothing happened."""
        if not self.state_dir.exists():
            return {}
        return {
            str(p.relative_to(self.state_dir)): p.read_bytes()
            for p in sorted(self.state_dir.rglob("*"))
            if p.is_file()
        }


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    kind: str = request.param
    project = f"contract-{tmp_path.name}"  # MemoryTarget's state is process-wide
    if kind == "memory":
        h = Harness(kind, MemoryTarget(), tmp_path, project, {})
    elif kind == "local":
        h = Harness(kind, LocalTarget(), tmp_path, project, {"start": START, "health_timeout": 10})
        h.unhealthy = {"health_timeout": 1}
    else:
        h = Harness(
            kind,
            CommandTarget(),
            tmp_path,
            project,
            {"deploy": 'echo "$SHIPYARD_TO_CANDIDATE" >> deployed.txt'},
        )
        h.unhealthy = {"health": "exit 1", "health_timeout": 0.5}
    try:
        yield h
    finally:
        h.target.close()
        if isinstance(h.target, LocalTarget):
            h.target.stop_all(h.state_dir)
        MemoryTarget.live.pop((project, "staging"), None)
        MemoryTarget.unhealthy.discard("c2")


def test_deploy_then_running_reports_the_candidate(harness: Harness) -> None:
    assert harness.running() == []

    deployed = harness.target.deploy(harness.spec("c1", "1.0.0"))

    assert deployed.candidate == "c1"
    assert deployed.instances and all(i.candidate == "c1" for i in deployed.instances)
    assert harness.running() == ["c1"]


def test_digest_mismatch_is_refused_before_anything_happens(harness: Harness) -> None:
    harness.target.deploy(harness.spec("c1", "1.0.0"))
    before = harness.files()
    spec = harness.spec("c2", "1.1.0", from_candidate="c1")
    tampered = replace(spec.artifacts[0], digest="sha256:" + "0" * 64)

    with pytest.raises(IntegrityError) as err:
        harness.target.deploy(replace(spec, artifacts=(tampered,)))

    assert err.value.code is ErrorCode.DIGEST_MISMATCH
    assert err.value.details["expected"] == tampered.digest
    assert harness.running() == ["c1"]
    assert harness.files() == before


def test_version_that_never_becomes_healthy_leaves_the_old_running(harness: Harness) -> None:
    harness.target.deploy(harness.spec("c1", "1.0.0"))
    spec = harness.spec("c2", "1.1.0", from_candidate="c1", unhealthy=True)
    spec = replace(spec, settings={**spec.settings, **harness.unhealthy})
    if harness.kind == "memory":
        MemoryTarget.unhealthy.add("c2")

    with pytest.raises(AdapterError):
        harness.target.deploy(spec)

    assert harness.running() == ["c1"]


def test_retire_removes_the_old_candidate_from_running(harness: Harness) -> None:
    harness.target.deploy(harness.spec("c1", "1.0.0"))
    spec2 = harness.spec("c2", "1.1.0", from_candidate="c1")
    harness.target.deploy(spec2)

    harness.target.retire(spec2, "c1")

    assert harness.running() == ["c2"]
