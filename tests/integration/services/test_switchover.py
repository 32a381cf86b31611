"""The first canary on a target where the stable does not run (its kind changed), on both databases.

Regression of issue 13: production first deployed by a `command` target, then `local` behind a
router with a canary policy: the rollout stayed at weight 0% forever ("has no running instance to
send traffic to"). The memory target stands in for the new kind: clearing what it runs is what a
switch of kind looks like from the new target's side.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.domain.deployments import DeploymentState
from shipyard.domain.rollouts import Phase
from shipyard.services import deployments, rollouts
from tests.integration.services.test_rollouts_service import (
    ADA,
    CONFIG,
    REF,
    T0,
    drain,
    live,
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


def test_canary_on_a_new_target_kind_starts_the_stable_there_first_instead_of_sitting_at_0_percent(
    rt: Runtime, repo: GitRepo, router: MemoryRouter
) -> None:
    rc1, rc2 = release_two(rt, repo)
    MemoryTarget.live[REF] = set()  # the new kind runs nothing yet
    MemoryTarget.deploys.clear()

    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    drain(rt)

    assert [s.candidate for s in MemoryTarget.deploys] == [rc1, rc2]  # the stable first
    assert MemoryTarget.live[REF] == {rc1, rc2}
    assert live(router) == (rc1, rc2, 10)  # step 1 took its weight
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.rollout.phase is Phase.PROGRESSING and view.rollout.last_error in (None, "")
    _, log = deployments.get_deployment(rt.services, ADA, d.id)
    assert f"plan: {rc1} (stable) does not run on target memory" in log


def test_canary_whose_stable_is_vetoed_and_gone_deploys_directly_and_says_so(
    rt: Runtime, repo: GitRepo, router: MemoryRouter
) -> None:
    rc1, rc2 = release_two(rt, repo)
    deployments.veto(rt.services, ADA, "shop", rc1, reason="leaks")
    MemoryTarget.live[REF] = set()

    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    drain(rt)

    assert state(rt, d.id) is DeploymentState.SUCCEEDED  # no rollout to wait for
    assert MemoryTarget.live[REF] == {rc2}
    assert live(router) == (rc2, None, 0)
    _, log = deployments.get_deployment(rt.services, ADA, d.id)
    assert "nothing to compare a canary with" in log and "it is vetoed" in log


def test_a_canary_beside_a_running_stable_plans_nothing_extra(
    rt: Runtime, repo: GitRepo, router: MemoryRouter
) -> None:
    _, rc2 = release_two(rt, repo)
    MemoryTarget.deploys.clear()

    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    drain(rt)

    assert [s.candidate for s in MemoryTarget.deploys] == [rc2]
    _, log = deployments.get_deployment(rt.services, ADA, d.id)
    assert "plan:" not in log
