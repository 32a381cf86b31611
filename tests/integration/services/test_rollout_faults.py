"""Rollouts that meet faults, through the services and the engine, on both databases.

Regression tests for what users saw: a rollout stuck for good logging ``tick failed`` every 2 s,
an abort that stayed ``aborting``, a failing metric query that failed every tick with nothing in
the evidence. Every fault here ends in a decision with its evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.metrics.memory import MemoryProvider
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import DeploymentState
from shipyard.domain.rollouts import PauseReason, Phase
from shipyard.errors import AdapterError, ConflictError, PermissionDenied
from shipyard.ports.routers import RoutePlan, RouteRef
from shipyard.ports.targets import DeploySpec
from shipyard.services import deployments, projects, releases, rollouts
from tests.support.gitrepo import GitRepo
from tests.support.runtime import memory_runtime, shop_repo, shop_yaml

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
ADA = Actor("ada", Role.DEPLOYER)
ROOT = Actor("root", Role.ADMIN)
REF = ("shop", "production")

CONFIG = shop_yaml("""\
environments:
  - name: production
    target: {kind: memory}
    router: {port: 18998}
    policy: slow
policies:
  slow:
    steps:
      - set_weight: 10
      - pause: 10m
  business:
    steps:
      - set_weight: 10
      - analysis: {checks: [checkout], interval: 10s, duration: 5m}
  patient:
    consecutive_error_limit: 2
    on_error: pause
    steps:
      - set_weight: 10
      - pause: 10m
checks:
  checkout:
    provider: prometheus
    query: sum(rate(checkout_failures_total{version="{{version}}"}[{{interval}}]))
    threshold: {max: 2}
""")


class BrokenRouter(MemoryRouter):
    """The memory router with a fault that lasts until it is cleared."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: str | None = None

    def apply(self, route: RouteRef, plan: RoutePlan) -> None:
        if self.broken is not None:
            raise AdapterError(self.broken)
        super().apply(route, plan)


class StuckTarget(MemoryTarget):
    """The memory target whose instances cannot be stopped."""

    def retire(self, spec: DeploySpec, candidate: str) -> None:
        raise AdapterError(f"could not kill the instances of {candidate}")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def router() -> BrokenRouter:
    return BrokenRouter()


@pytest.fixture
def rt(
    tmp_path: Path, database_url: str, clock: FixedClock, router: BrokenRouter
) -> Iterator[Runtime]:
    with memory_runtime(tmp_path, database_url, clock=clock, router=router) as runtime:
        yield runtime


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return shop_repo(tmp_path, CONFIG)


def release_two(rt: Runtime, repo: GitRepo) -> tuple[str, str]:
    projects.add_project(rt.services, ROOT, str(repo.path))
    _, rc = releases.cut_release(rt.services, ADA, "shop")
    rt.worker().drain()
    deployments.deploy(rt.services, ADA, "shop", rc.name, "production")
    rt.worker().drain()
    fix = repo.commit("fix: rounding (#5)", {"app.py": "V = 2\n"})
    rc2 = releases.pick(rt.services, ADA, "shop", "1.0.0", [fix])
    rt.worker().drain()
    return rc.name, rc2.name


def run_until_settled(rt: Runtime, clock: FixedClock, rounds: int = 24) -> None:
    """Tick, then let the backoff pass, a bounded number of times."""
    worker = rt.worker()
    for _ in range(rounds):
        worker.drain()
        clock.advance(seconds=61)
    worker.drain()


def records(rt: Runtime, deployment_id: int) -> list[tuple[str, str]]:
    view = rollouts.explain(rt.services, ADA, "shop", deployment_id)
    return [(e.record.kind, e.record.message) for e in view.records]


def test_canary_whose_stable_instance_died_ends_instead_of_retrying_forever(
    rt: Runtime, repo: GitRepo, router: BrokenRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    rt.worker().drain()
    MemoryTarget.live[REF].discard(rc1)  # the stable version's instance is gone
    run_until_settled(rt, clock)
    view = rollouts.explain(rt.services, ADA, "shop", d.id)
    r = view.rollout
    assert r.phase is Phase.ROLLED_BACK and not r.active
    assert any("has no running instance" in x for x in r.not_done)
    assert f"{rc2} was not stopped: traffic could not be moved off it" in r.not_done
    assert MemoryTarget.live[REF] == {rc2}  # the only version that can serve still does
    kinds = [e.record.kind for e in view.records]
    # one error record per streak (the canary's ticks, then the abort's attempts), not one a tick
    assert kinds[-4:] == ["error", "aborting", "error", "rolled_back"]
    aborting, rolled_back = view.records[-3].record, view.records[-1].record
    assert aborting.evidence["count"] == 4
    assert aborting.evidence["first_seen"] < aborting.evidence["last_seen"]
    assert rolled_back.evidence["errors"]["count"] == 4
    done, _ = deployments.get_deployment(rt.services, ADA, d.id)
    assert done.state is DeploymentState.FAILED
    assert "not done:" in (done.outcome or "")


def test_abort_with_a_broken_router_ends_rolled_back_saying_what_was_not_done(
    rt: Runtime, repo: GitRepo, router: BrokenRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    rt.worker().drain()
    router.broken = "haproxy: runtime API socket refused the connection"
    rollouts.abort(rt.services, ADA, "shop", "production", reason="spike")
    run_until_settled(rt, clock)
    r = rollouts.explain(rt.services, ADA, "shop", d.id).rollout
    assert r.phase is Phase.ROLLED_BACK
    assert r.not_done[0].startswith(f"could not route 100% of traffic to {rc1}: haproxy:")
    done, _ = deployments.get_deployment(rt.services, ADA, d.id)
    assert done.state is DeploymentState.FAILED
    assert "aborted by ada: spike; not done: could not route" in (done.outcome or "")


def test_abort_whose_canary_cannot_be_stopped_routes_to_stable_and_says_so(
    rt: Runtime, repo: GitRepo, router: BrokenRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    rt.worker().drain()
    rt.services = replace(rt.services, targets=lambda kind: StuckTarget())
    rollouts.abort(rt.services, ADA, "shop", "production")
    run_until_settled(rt, clock)
    r = rollouts.explain(rt.services, ADA, "shop", d.id).rollout
    assert r.phase is Phase.ROLLED_BACK
    plan = router.plans[REF]
    assert plan.stable is not None and plan.stable.candidate == rc1 and plan.canary is None
    assert r.not_done == (
        f"could not stop {rc2}: could not kill the instances of {rc2} (4 attempts)",
    )


def test_failing_metric_query_is_a_check_error_in_the_evidence_not_a_failed_tick(
    rt: Runtime, repo: GitRepo, router: BrokenRouter, clock: FixedClock
) -> None:
    prom = MemoryProvider()
    prom.down = True
    rt.services = replace(rt.services, metrics=lambda source: prom)
    _, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="business")
    worker = rt.worker()
    worker.drain()
    for _ in range(2):
        clock.advance(seconds=10)
        worker.drain()
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.rollout.phase is Phase.PROGRESSING and view.rollout.last_error == ""
    [error] = [e.record for e in view.records if e.record.kind == "error"]
    assert error.evidence["source"] == "check checkout"
    assert "marked down" in error.evidence["error"]
    run = view.rollout.analysis
    assert run is not None and run.errors["checkout"].count == 3
    clock.advance(seconds=10)
    worker.drain()  # the 4th error in a row: the policy's default limit
    r = rollouts.explain(rt.services, ADA, "shop", d.id).rollout
    assert r.phase is Phase.ROLLED_BACK
    assert "check checkout: 4 measurement errors in a row" in r.reason


def test_on_error_pause_stops_for_a_human_and_status_names_the_action(
    rt: Runtime, repo: GitRepo, router: BrokenRouter, clock: FixedClock
) -> None:
    _, rc2 = release_two(rt, repo)
    deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="patient")
    rt.worker().drain()
    router.broken = "router down"
    run_until_settled(rt, clock)
    r = rollouts.status(rt.services, ADA, "shop", "production").rollout
    assert (r.phase, r.paused_for, r.due_at) == (Phase.PAUSED, PauseReason.ERRORS, None)
    assert r.errors is not None and r.errors.count == 2
    assert "resume" in r.awaiting
    router.broken = None
    rollouts.resume(rt.services, ADA, "shop", "production")
    rt.worker().drain()
    r = rollouts.status(rt.services, ADA, "shop", "production").rollout
    assert r.phase is Phase.PROMOTED and r.errors is None  # its pause had passed meanwhile


def test_aborted_rollout_can_be_retried_from_its_first_step(
    rt: Runtime, repo: GitRepo, router: BrokenRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    first = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    rt.worker().drain()
    rollouts.abort(rt.services, ADA, "shop", "production", reason="flaky dependency")
    rt.worker().drain()
    again = rollouts.retry(rt.services, ADA, "shop", "production")
    assert (again.candidate, again.from_candidate) == (rc2, rc1)
    assert again.id != first.id and "retry of deployment" in again.reason
    rt.worker().drain()
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.rollout.deployment_id == again.id
    assert (view.rollout.phase, view.rollout.step, view.rollout.weight) == (
        Phase.PROGRESSING,
        1,
        10.0,
    )
    assert MemoryTarget.live[REF] == {rc1, rc2}  # the canary runs again beside stable
    plan = router.plans[REF]
    assert plan.canary is not None and plan.canary.candidate == rc2


def test_retry_is_refused_while_a_rollout_runs(rt: Runtime, repo: GitRepo) -> None:
    _, rc2 = release_two(rt, repo)
    deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    rt.worker().drain()
    with pytest.raises(ConflictError, match="only a rolled back"):
        rollouts.retry(rt.services, ADA, "shop", "production")


def test_retry_needs_the_deploy_right(rt: Runtime, repo: GitRepo) -> None:
    _, rc2 = release_two(rt, repo)
    deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    rt.worker().drain()
    rollouts.abort(rt.services, ADA, "shop", "production")
    rt.worker().drain()
    with pytest.raises(PermissionDenied):
        rollouts.retry(rt.services, Actor("viv", Role.VIEWER), "shop", "production")
