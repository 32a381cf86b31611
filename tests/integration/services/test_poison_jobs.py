"""Poison jobs: a job that fails the same way every time ends dead after the attempt cap, with its
error where people look, and its environment free; it is never re-run forever (as on main)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from shipyard.adapters.clock import FixedClock
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.domain.jobs import RetryPolicy
from shipyard.domain.releases import CandidateStatus
from shipyard.engine.worker import Worker
from shipyard.errors import ConfigError
from shipyard.services import projects, releases
from shipyard.store.tables import JobRow
from tests.support.gitrepo import GitRepo
from tests.support.runtime import memory_runtime, shop_repo, shop_yaml

ADA = Actor("ada", Role.DEPLOYER)
POLICY = RetryPolicy(max_attempts=3, backoff_s=10)
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def rt(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Runtime]:
    with memory_runtime(tmp_path, database_url, clock=clock) as runtime:
        yield runtime


def run_until_settled(rt: Runtime, clock: FixedClock, rounds: int = 10) -> None:
    """Drain the engine, then let each backoff pass, a bounded number of times."""
    worker = Worker(rt.services, retry_policy=POLICY)
    for _ in range(rounds):
        worker.drain()
        clock.advance(seconds=POLICY.max_backoff_s)


def jobs(rt: Runtime) -> list[tuple[str, str, int, str]]:
    with rt.engine.connect() as conn:
        rows = conn.execute(select(JobRow.kind, JobRow.state, JobRow.attempts, JobRow.error))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@contextmanager
def read_only(where: Path) -> Iterator[None]:
    """A read-only file system at ``where`` (a tmpfs mounted ro: root writes through chmod)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(where)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(where)], check=True)


def add_and_cut(rt: Runtime, repo: GitRepo) -> str:
    projects.add_project(rt.services, SYSTEM, str(repo.path))
    return releases.cut_release(rt.services, ADA, "shop")[1].name


def test_a_freeze_of_1e20_seconds_is_refused_at_cut_and_never_becomes_a_job(
    rt: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    """Once a poison build (OverflowError on every attempt); durations are now bounded to a
    year when shipyard.yaml is read, so nothing is queued at all."""
    config = shop_yaml("""\
environments:
  - name: staging
    target: {kind: memory}
    auto_promote: true
    freeze:
      - {cron: "0 0 * * *", duration: 1.0e+20}
""")
    repo = shop_repo(tmp_path, config)
    with pytest.raises(ConfigError) as caught:
        add_and_cut(rt, repo)
    assert caught.value.line == 11 and "at most a year" in caught.value.reason
    assert jobs(rt) == []


def test_a_build_env_with_a_nul_byte_ends_dead_with_its_error(
    rt: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    config = shop_yaml("""\
environments:
  - name: staging
    target: {kind: memory}
""").replace("build:\n", 'build:\n  env: {GREETING: "a\\0b"}\n')
    repo = shop_repo(tmp_path, config)
    add_and_cut(rt, repo)
    run_until_settled(rt, clock)
    (job,) = jobs(rt)
    assert job[:3] == ("build", "dead", 3)
    assert "null byte" in job[3]


def test_a_deploy_timeout_that_would_overflow_is_refused_at_cut(
    rt: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    """Once a poison deploy (OverflowError on every attempt); now refused when read."""
    config = shop_yaml("""\
environments:
  - name: staging
    target: {kind: command, deploy: "true", timeout: 1.0e+20}
""")
    with pytest.raises(ConfigError) as caught:
        add_and_cut(rt, shop_repo(tmp_path, config))
    assert caught.value.field == "environments[0].target.timeout"
    assert jobs(rt) == []


def test_a_read_only_artifact_store_fails_the_build_once_with_its_error(
    rt: Runtime, clock: FixedClock, tmp_path: Path
) -> None:
    config = shop_yaml("""\
environments:
  - name: staging
    target: {kind: memory}
""")
    repo = shop_repo(tmp_path, config)
    store = rt.data_dir / "artifacts"
    with read_only(store):
        candidate = add_and_cut(rt, repo)
        run_until_settled(rt, clock)
    (job,) = jobs(rt)
    assert job[:3] == ("build", "done", 1)
    shown = releases.show_release(rt.services, ADA, "shop", "1.0.0")
    (cand,) = [c for c in shown.candidates if c.name == candidate]
    assert cand.status is CandidateStatus.FAILED
    assert "cannot store" in cand.reason and "Read-only file system" in cand.reason
