"""Real processes on 127.0.0.1 for the deploy targets; every one is stopped after its test."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters.targets import local as local_module
from shipyard.adapters.targets.local import LocalTarget
from shipyard.adapters.targets.verify import sha256_file
from shipyard.ports.targets import ArtifactFile, DeployMode, DeploySpec
from tests.support.sample_service import START, make_artifact


def spec_for(
    state_dir: Path,
    candidate: str,
    artifact: Path,
    *,
    version: str = "1.0.0",
    from_candidate: str | None = None,
    mode: DeployMode = DeployMode.DEPLOY,
    settings: Mapping[str, Any] | None = None,
    digest: str | None = None,
) -> DeploySpec:
    """A spec for one artifact whose recorded digest is taken now (unless given)."""
    return DeploySpec(
        project="shop",
        environment="staging",
        candidate=candidate,
        version=version,
        sha="0" * 40,
        mode=mode,
        from_candidate=from_candidate,
        artifacts=(ArtifactFile(artifact.name, digest or sha256_file(artifact), artifact),),
        settings={"start": START, "health_timeout": 10, **(settings or {})},
        state_dir=state_dir,
    )


def get(address: str, path: str = "/") -> Any:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def refused(address: str) -> bool:
    try:
        urllib.request.urlopen(f"http://{address}/healthz", timeout=2).close()
    except OSError:
        return True
    return False


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def pids_running_in(directory: Path) -> list[int]:
    """Processes whose working directory is inside `directory` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd.is_relative_to(directory):
            found.append(int(entry.name))
    return found


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "env" / "shop" / "staging"


@pytest.fixture
def artifacts(tmp_path: Path) -> Any:
    """artifacts(version, **knobs) -> path of a packed sample service."""

    def make(version: str, **knobs: Any) -> Path:
        return make_artifact(tmp_path / "artifacts" / version, version, **knobs)

    return make


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> Iterator[LocalTarget]:
    """A LocalTarget that checks for dead instances every 0.2 s; torn down with all it ran."""
    monkeypatch.setattr(local_module, "SUPERVISE_EVERY", 0.2)
    target = LocalTarget()
    try:
        yield target
    finally:
        target.close()
        target.stop_all(state_dir)
        assert pids_running_in(state_dir) == []
