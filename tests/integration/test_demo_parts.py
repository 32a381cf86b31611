"""The parts of `shipyard demo` on their own: its repository and config, its process sweep."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from shipyard.cli.demo.processes import leftovers, sweep
from shipyard.cli.demo.repo import PROJECT, SampleRepo
from shipyard.config.loader import load_config_file


def test_the_sample_repository_tells_the_story_in_commits(tmp_path: Path) -> None:
    repo = SampleRepo(tmp_path / PROJECT)
    first = repo.create(router_port=18080)
    config = load_config_file(repo.path / "shipyard.yaml")  # a config the server accepts
    assert config.project == PROJECT
    assert [e.name for e in config.environments] == ["staging", "production"]
    assert config.checks["errors"].judge == "sequential"  # judged against the stable version
    app = repo.path / "app.py"
    assert "FAILURE_SHARE = 0.0\n" in app.read_text()

    repo.commit_feature()
    assert 'GREETING = "welcome"' in app.read_text()
    bug = repo.commit_bug()
    assert "FAILURE_SHARE = 0.3" in app.read_text()
    fix = repo.commit_fix()
    assert "FAILURE_SHARE = 0.0\n" in app.read_text() and 'GREETING = "welcome"' in app.read_text()
    assert repo.git("log", "--format=%an", "-1") == "Ada Lovelace"  # the deployer wrote them all

    # The fix picks cleanly onto a release branch cut at the bug, as the demo's pick does.
    repo.git("branch", "release/1.2.0", bug)
    repo.git("checkout", "-q", "release/1.2.0")
    repo.git("cherry-pick", fix)
    assert "FAILURE_SHARE = 0.0\n" in app.read_text()
    assert len(first) == 2


def _build(repo: SampleRepo, out: Path) -> bytes:
    """Run the sample's build command as the local builder does: ``sh -c`` in the checkout."""
    command = load_config_file(repo.path / "shipyard.yaml").build.command
    out.mkdir()
    env = {"PATH": os.environ["PATH"], "SHIPYARD_ARTIFACTS_DIR": str(out)}
    subprocess.run(["/bin/sh", "-c", command], cwd=repo.path, env=env, check=True)
    return (out / "hello.tar.gz").read_bytes()


def test_the_same_commit_builds_the_same_bytes(tmp_path: Path) -> None:
    """A checkout's mtimes (and the clock) must not reach the artifact: one commit, one digest."""
    repo = SampleRepo(tmp_path / PROJECT)
    repo.create(router_port=18080)
    first = _build(repo, tmp_path / "a")
    os.utime(repo.path / "app.py", (1_000_000_000, 1_000_000_000))  # as a later checkout would
    time.sleep(1.1)  # gzip and tar would otherwise stamp the same second
    assert _build(repo, tmp_path / "b") == first


def test_the_sweep_stops_what_works_in_the_demo_dir_and_nothing_else(tmp_path: Path) -> None:
    inside, outside = tmp_path / "demo", tmp_path / "other"
    inside.mkdir()
    outside.mkdir()
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen(sleep, cwd=inside)
    theirs = subprocess.Popen(sleep, cwd=outside)
    try:
        deadline = time.monotonic() + 10
        while ours.pid not in leftovers(inside) and time.monotonic() < deadline:
            time.sleep(0.02)  # until the child has moved into its cwd
        found = sweep(inside)
        assert ours.pid in found and theirs.pid not in found
        assert ours.wait(5) is not None
        assert theirs.poll() is None
        assert leftovers(inside) == {}
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait(5)
