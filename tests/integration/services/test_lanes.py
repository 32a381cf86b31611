"""Builds and deployments run in separate lanes: on main one job thread made a rollback wait 39 s
behind a 40 s build."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import DeploymentState
from shipyard.domain.releases import CandidateStatus
from shipyard.services import deployments, releases
from tests.support.reachable import writable
from tests.support.runtime import first_candidate, memory_runtime, shop_repo, shop_yaml

ADA = Actor("ada", Role.DEPLOYER)
CONFIG = shop_yaml("""\
environments:
  - name: staging
    target: {kind: memory}
""")
pytestmark = pytest.mark.slow


def wait_for(what: str, ok: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(ok) and ok():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_rollback_completes_while_a_slow_build_runs(tmp_path: Path) -> None:
    with memory_runtime(tmp_path) as rt:
        svc = rt.services
        repo = shop_repo(tmp_path, CONFIG)
        first = first_candidate(rt, repo, ADA)
        deployments.deploy(svc, ADA, "shop", first, "staging")
        rt.worker().drain()
        repo.commit("feat: v2", {"app.py": "V = 2\n"})
        second = releases.cut_release(svc, ADA, "shop")[1].name
        rt.worker().drain()
        deployments.deploy(svc, ADA, "shop", second, "staging")
        rt.worker().drain()

        mark = writable(tmp_path / "out") / "build-started"
        slow = CONFIG.replace(
            "command: tar", f'env: {{MARK: "{mark}"}}\n  command: touch "$MARK"; sleep 20; tar'
        )
        repo.commit("feat: v3 with a slow build", {"shipyard.yaml": slow, "app.py": "V = 3\n"})
        release, building = releases.cut_release(svc, ADA, "shop")
        worker = rt.worker()
        worker.start()
        try:
            wait_for("the slow build to start", mark.exists, timeout=15)
            asked = time.monotonic()
            back = deployments.rollback(svc, ADA, "shop", "staging", reason="v2 is bad")

            def rolled_back() -> bool:
                d, _ = deployments.get_deployment(svc, ADA, back.id)
                return d.state is DeploymentState.SUCCEEDED

            wait_for("the rollback", rolled_back, timeout=10)
            took = time.monotonic() - asked
            candidate = releases.show_release(svc, ADA, "shop", release.version)
        finally:
            stopping = time.monotonic()
            worker.stop()
            stopped = time.monotonic() - stopping
    assert took < 5, f"the rollback waited {took:.1f}s"
    (still,) = [c for c in candidate.candidates if c.name == building.name]
    assert still.status is CandidateStatus.BUILDING  # the build was still running meanwhile
    assert stopped < 8  # the stop killed the build instead of waiting for its 20 s
