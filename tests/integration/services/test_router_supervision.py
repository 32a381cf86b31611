"""The router between rollouts: supervised by the engine, read back by status, and a missing
router program failing the deployment at once (memory target; the memory router or none)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.bootstrap import Runtime
from shipyard.domain.deployments import DeploymentState
from shipyard.errors import NotFoundError
from shipyard.services import deployments, projects, releases, rollouts
from shipyard.services.supervision import supervise_routers
from tests.integration.services.test_rollouts_service import (
    ADA,
    CONFIG,
    REF,
    ROOT,
    T0,
    ref,
    release_two,
    state,
)
from tests.support.gitrepo import GitRepo
from tests.support.runtime import memory_runtime, shop_repo


@pytest.fixture
def router() -> MemoryRouter:
    return MemoryRouter()


@pytest.fixture
def rt(tmp_path: Path, database_url: str, router: MemoryRouter) -> Iterator[Runtime]:
    with memory_runtime(tmp_path, database_url, clock=FixedClock(T0), router=router) as runtime:
        yield runtime


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return shop_repo(tmp_path, CONFIG)


def test_a_router_that_died_between_rollouts_is_started_again_by_the_engine(
    rt: Runtime, repo: GitRepo, router: MemoryRouter
) -> None:
    release_two(rt, repo)
    router.stop(ref(rt))  # the proxy died; no rollout runs to notice
    assert REF not in router.running
    assert supervise_routers(rt.services) == 1
    assert REF in router.running
    assert router.observe(ref(rt)).stable is not None
    router.stop(ref(rt))
    rt.worker().rollouts.run_once()  # a starting engine supervises at once
    assert REF in router.running


def test_rollout_status_shows_the_routing_read_back_from_the_router(
    rt: Runtime, repo: GitRepo, router: MemoryRouter
) -> None:
    _, rc2 = release_two(rt, repo)
    deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    rt.worker().drain()
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.rollout.weight == 10.0
    assert view.routing == router.plans[REF]
    router.plans[REF] = replace(router.plans[REF], canary_weight=35.0)  # moved by hand
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.rollout.weight == 10.0  # what the rollout wants...
    assert view.routing is not None and view.routing.canary_weight == 35.0  # ...and what is live
    router.stop(ref(rt))
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.routing is None and "not running" in view.routing_error
    _, rows = deployments.status(rt.services, ADA, "shop")
    assert [r.routing for r in rows] == [None]


def test_deploy_whose_router_program_is_missing_fails_instead_of_waiting_in_promoting(
    tmp_path: Path, database_url: str, repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with memory_runtime(tmp_path, database_url, clock=FixedClock(T0)) as rt:  # the real registry
        projects.add_project(rt.services, ROOT, str(repo.path))
        _, rc = releases.cut_release(rt.services, ADA, "shop")
        rt.worker().drain()
        monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")  # haproxy is in /usr/sbin
        d = deployments.deploy(rt.services, ADA, "shop", rc.name, "production")
        rt.worker().drain()
        assert state(rt, d.id) is DeploymentState.FAILED
        done, _ = deployments.get_deployment(rt.services, ADA, d.id)
        assert "haproxy is not installed" in done.outcome
        assert "apt-get install haproxy" in done.outcome
        with pytest.raises(NotFoundError, match="no rollout"):  # none was started to wait
            rollouts.status(rt.services, ADA, "shop", "production")
