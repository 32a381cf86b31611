"""Rollouts through the services and the engine, on real git and both databases.

The memory target and the memory router stand in for processes and HAProxy (tests/e2e runs the
real ones); the clock is fixed and moved by hand, so every step and measurement is exact.
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
from shipyard.domain.rollouts import Phase
from shipyard.engine.worker import Worker
from shipyard.errors import ConflictError, InvalidError, NotFoundError, RefusedError
from shipyard.ports.routers import RouteRef
from shipyard.services import deployments, projects, releases, rollouts
from tests.support.gitrepo import GitRepo
from tests.support.runtime import memory_runtime, shop_repo, shop_yaml

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ADA = Actor("ada", Role.DEPLOYER)
BOB = Actor("bob", Role.APPROVER)
ROOT = Actor("root", Role.ADMIN)

CONFIG = shop_yaml("""\
environments:
  - name: production
    target: {kind: memory}
    router: {port: 18999}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 10
      - analysis: {checks: [errors], interval: 10s, duration: 30s}
      - set_weight: 50
      - pause: {}
  gated:
    steps:
      - set_weight: 20
      - approval: {required: 1}
      - pause: 1m
  shadow:
    steps:
      - set_weight: 10
      - analysis: {checks: [errors-dry], interval: 10s, duration: 20s}
  careful:
    steps:
      - set_weight: 10
      - analysis: {checks: [errors], interval: 10s, duration: 20s}
  business:
    steps:
      - set_weight: 10
      - analysis: {checks: [checkout], interval: 10s, duration: 30s}
checks:
  checkout:
    provider: prometheus
    query: sum(rate(checkout_failures_total{version="{{version}}"}[{{interval}}]))
    compare: baseline
    max_increase: 0.5
    threshold: {max: 2}
  errors: {metric: error_ratio, judge: threshold, threshold: {max: 0.05}}
  errors-dry: {metric: error_ratio, judge: threshold, threshold: {max: 0.05}, dry_run: true}
""")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def router() -> MemoryRouter:
    return MemoryRouter()


@pytest.fixture
def rt(
    tmp_path: Path, database_url: str, clock: FixedClock, router: MemoryRouter
) -> Iterator[Runtime]:
    with memory_runtime(tmp_path, database_url, clock=clock, router=router) as runtime:
        yield runtime


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return shop_repo(tmp_path, CONFIG)


REF = ("shop", "production")


def ref(rt: Runtime) -> RouteRef:
    return RouteRef("shop", "production", rt.services.state_dir / "shop/production/router", 18999)


def drain(rt: Runtime, worker: Worker | None = None) -> None:
    (worker or rt.worker()).drain()


def live(router: MemoryRouter) -> tuple[str | None, str | None, float]:
    plan = router.plans[REF]
    return (
        plan.stable.candidate if plan.stable else None,
        plan.canary.candidate if plan.canary else None,
        plan.canary_weight,
    )


def release_two(rt: Runtime, repo: GitRepo) -> tuple[str, str]:
    """rc1 live at 100% in production, rc2 (a pick) built and ready."""
    projects.add_project(rt.services, ROOT, str(repo.path))
    _, rc = releases.cut_release(rt.services, ADA, "shop")
    drain(rt)
    first = deployments.deploy(rt.services, ADA, "shop", rc.name, "production")
    drain(rt)
    assert state(rt, first.id) is DeploymentState.SUCCEEDED
    fix = repo.commit("fix: rounding (#5)", {"app.py": "V = 2\n"})
    rc2 = releases.pick(rt.services, ADA, "shop", "1.0.0", [fix])
    drain(rt)
    return rc.name, rc2.name


def state(rt: Runtime, deployment_id: int) -> DeploymentState:
    d, _ = deployments.get_deployment(rt.services, ADA, deployment_id)
    return d.state


def serve(router: MemoryRouter, rt: Runtime, canary: str, stable: str, canary_errors: int) -> None:
    router.serve(ref(rt), canary, 100, canary_errors)
    router.serve(ref(rt), stable, 900, 9)


def kinds(rt: Runtime, deployment_id: int) -> list[str]:
    view = rollouts.explain(rt.services, ADA, "shop", deployment_id)
    return [e.record.kind for e in view.records]


BLUE_GREEN = CONFIG.replace(
    "checks:\n", "  bluegreen:\n    strategy: blue_green\n    keep_old_for: 10m\nchecks:\n", 1
)


def test_rollback_to_the_kept_blue_green_colour_still_runs_after_keep_old_for(
    rt: Runtime, tmp_path: Path, clock: FixedClock, router: MemoryRouter
) -> None:
    """The old colour kept warm after a switch was stopped when its time was up, even though a
    rollback had brought it back meanwhile: nothing ran, status said the rollback succeeded."""
    rc1, rc2 = release_two(rt, shop_repo(tmp_path, BLUE_GREEN))
    deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="bluegreen")
    drain(rt)
    rollouts.promote(rt.services, BOB, "shop", "production")
    drain(rt)
    assert live(router) == (rc2, None, 0.0)
    back = deployments.rollback(rt.services, ADA, "shop", "production", reason="checkout broke")
    drain(rt)
    assert state(rt, back.id) is DeploymentState.SUCCEEDED
    clock.advance(seconds=700)  # past keep_old_for
    drain(rt)
    assert MemoryTarget.live[REF] == {rc1}
    assert live(router) == (rc1, None, 0.0)
    assert kinds(rt, back.id - 1)[-1] == "retired"  # handed over, recorded


def test_first_version_takes_all_traffic_without_a_canary(
    rt: Runtime, repo: GitRepo, router: MemoryRouter
) -> None:
    rc1, _ = release_two(rt, repo)
    assert live(router) == (rc1, None, 0.0)
    with rt.services.uow() as uow:
        d = uow.deployments.history(uow.projects.get("shop"))[-1]  # type: ignore[arg-type]
    assert kinds(rt, d.id) == ["promoting", "promoted"]


def test_healthy_canary_steps_through_analysis_pause_and_promote(
    rt: Runtime, repo: GitRepo, router: MemoryRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    drain(rt)
    assert state(rt, d.id) is DeploymentState.RUNNING  # the rollout holds it
    assert live(router) == (rc1, rc2, 10.0)
    assert MemoryTarget.live[REF] == {rc1, rc2}
    for _ in range(3):
        serve(router, rt, rc2, rc1, canary_errors=1)
        clock.advance(seconds=10)
        drain(rt)
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.rollout.phase is Phase.PAUSED
    assert view.rollout.step == 3 and view.rollout.pause_reason == "paused until promoted"
    assert live(router) == (rc1, rc2, 50.0)
    passed = next(e.record for e in view.records if e.record.kind == "analysis")
    [check] = passed.evidence["checks"]
    assert (check["name"], check["verdict"], check["measurements"]) == ("errors", "pass", 3)
    assert check["evidence"]["values"] == [0.01, 0.01, 0.01]
    assert check["evidence"]["max"] == 0.05

    rollouts.promote(rt.services, ADA, "shop", "production")
    drain(rt)
    assert live(router) == (rc2, None, 0.0)
    assert MemoryTarget.live[REF] == {rc2}  # the old version retired after the switch
    assert state(rt, d.id) is DeploymentState.SUCCEEDED
    assert kinds(rt, d.id) == [
        "started",
        "weight",
        "analysis",
        "weight",
        "paused",
        "skipped",
        "promoting",
        "promoted",
    ]
    with rt.services.uow() as uow:
        events = [e.kind for e in uow.events.list() if e.kind.startswith("rollout.")]
    assert events[-3:] == ["rollout.skipped", "rollout.promoting", "rollout.promoted"]


def test_failing_canary_is_rolled_back_with_its_evidence(
    rt: Runtime, repo: GitRepo, router: MemoryRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    drain(rt)
    serve(router, rt, rc2, rc1, canary_errors=20)  # 20% errors, the limit is 5%
    clock.advance(seconds=10)
    drain(rt)
    assert (
        rollouts.status(rt.services, ADA, "shop", "production").rollout.phase is Phase.PROGRESSING
    )
    serve(router, rt, rc2, rc1, canary_errors=20)  # threshold checks tolerate one failure
    clock.advance(seconds=10)
    drain(rt)
    assert live(router) == (rc1, None, 0.0)
    assert MemoryTarget.live[REF] == {rc1}
    done, _ = deployments.get_deployment(rt.services, ADA, d.id)
    assert done.state is DeploymentState.FAILED
    assert "analysis failed: errors: 2 of 2 measurements failed (limit 1)" in done.outcome
    view = rollouts.explain(rt.services, ADA, "shop", d.id)
    assert view.rollout.phase is Phase.ROLLED_BACK
    aborting = next(e.record for e in view.records if e.record.kind == "aborting")
    [check] = aborting.evidence["checks"]
    assert check["verdict"] == "fail" and check["evidence"]["values"] == [0.2, 0.2]
    assert check["evidence"]["failed"] == ["0.2 > max 0.05", "0.2 > max 0.05"]


def test_abort_puts_traffic_back_and_a_second_abort_is_refused(
    rt: Runtime, repo: GitRepo, router: MemoryRouter
) -> None:
    rc1, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    drain(rt)
    aborted = rollouts.abort(rt.services, ADA, "shop", "production", reason="saw a spike")
    assert aborted.phase is Phase.ABORTING
    with pytest.raises(ConflictError):
        rollouts.abort(rt.services, ADA, "shop", "production")
    drain(rt)
    assert live(router) == (rc1, None, 0.0)
    done, _ = deployments.get_deployment(rt.services, ADA, d.id)
    assert done.state is DeploymentState.FAILED
    assert "aborted by ada: saw a spike" in done.outcome
    with pytest.raises(NotFoundError):
        rollouts.abort(rt.services, ADA, "shop", "production")


def test_approval_step_needs_another_person_with_the_approver_role(
    rt: Runtime, repo: GitRepo, router: MemoryRouter, clock: FixedClock
) -> None:
    _, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="gated")
    drain(rt)
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.rollout.phase is Phase.PAUSED
    assert view.rollout.pause_reason == "waiting for 1 approval(s)"
    with pytest.raises(Exception) as denied:  # ada is a deployer, and asked for it
        rollouts.promote(rt.services, ADA, "shop", "production")
    assert "may not approve" in str(denied.value)
    with pytest.raises(RefusedError) as resume:
        rollouts.resume(rt.services, ADA, "shop", "production")
    assert "promote" in (resume.value.hint or "")
    approved = rollouts.promote(rt.services, BOB, "shop", "production")
    assert (approved.phase, approved.step) == (Phase.PROGRESSING, 2)  # on to the 1m pause
    assert "approved" in kinds(rt, d.id)
    drain(rt)
    clock.advance(minutes=1)
    drain(rt)
    assert live(router) == (rc2, None, 0.0)
    assert state(rt, d.id) is DeploymentState.SUCCEEDED


def test_unknown_policy_override_is_refused_before_anything_changes(
    rt: Runtime, repo: GitRepo, router: MemoryRouter
) -> None:
    rc1, rc2 = release_two(rt, repo)
    before = deployments.history(rt.services, ADA, "shop", None)
    with pytest.raises(InvalidError) as err:
        deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="nope")
    assert err.value.message == (
        "no release policy named 'nope' in this candidate's shipyard.yaml "
        "(known: business, canary, careful, gated, shadow)"
    )
    assert deployments.history(rt.services, ADA, "shop", None) == before
    drain(rt)
    assert live(router) == (rc1, None, 0.0)
    assert MemoryTarget.live[REF] == {rc1}


def test_dry_run_check_fails_on_record_but_the_canary_goes_on(
    rt: Runtime, repo: GitRepo, router: MemoryRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="shadow")
    drain(rt)
    for _ in range(2):
        serve(router, rt, rc2, rc1, canary_errors=30)
        clock.advance(seconds=10)
        drain(rt)
    assert state(rt, d.id) is DeploymentState.SUCCEEDED
    assert live(router) == (rc2, None, 0.0)
    assert kinds(rt, d.id).count("dry_run") == 1


def test_manual_pause_and_resume_and_a_stale_save_loses(
    rt: Runtime, repo: GitRepo, router: MemoryRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="careful")
    drain(rt)
    with rt.services.uow() as uow:
        stale = uow.rollouts.latest(uow.projects.get("shop"), "production")  # type: ignore[arg-type]
    assert stale is not None
    paused = rollouts.pause(rt.services, ADA, "shop", "production")
    assert paused.phase is Phase.PAUSED and paused.pause_reason == "paused by ada"
    with rt.services.uow() as uow:  # the engine's save from before the pause must not win
        assert uow.rollouts.save(replace(stale, weight=99.0), clock.now()) is None
        uow.rollback()
    serve(router, rt, rc2, rc1, canary_errors=0)
    clock.advance(minutes=5)
    drain(rt)
    assert rollouts.status(rt.services, ADA, "shop", "production").rollout.phase is Phase.PAUSED
    with pytest.raises(ConflictError):
        rollouts.pause(rt.services, ADA, "shop", "production")
    rollouts.resume(rt.services, ADA, "shop", "production")
    for _ in range(3):
        serve(router, rt, rc2, rc1, canary_errors=0)
        clock.advance(seconds=10)
        drain(rt)
    assert live(router) == (rc2, None, 0.0)


def test_a_restarted_engine_reapplies_the_saved_route(
    rt: Runtime, repo: GitRepo, router: MemoryRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    deployments.deploy(rt.services, ADA, "shop", rc2, "production")
    drain(rt)
    router.plans.clear()  # the proxy lost its state (it restarted, the machine rebooted)
    router.running.clear()
    drain(rt, Worker(rt.services, owner="second-life"))
    assert live(router) == (rc1, rc2, 10.0)


def test_an_expired_lease_is_taken_over_by_another_worker(
    rt: Runtime, repo: GitRepo, router: MemoryRouter, clock: FixedClock
) -> None:
    rc1, rc2 = release_two(rt, repo)
    deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="careful")
    drain(rt)
    svc = rt.services
    clock.advance(seconds=10)
    dead = rollouts.claim(svc, "dead-worker", lease_s=30)  # claimed, then the process died
    assert dead is not None
    assert rollouts.claim(svc, "other", lease_s=30) is None
    clock.advance(seconds=31)
    assert rollouts.claim(svc, "other", lease_s=30) == dead
    serve(router, rt, rc2, rc1, canary_errors=0)
    after = rollouts.tick(svc, dead, "other", {})
    rollouts.release(svc, dead, "other")
    assert after.phase is Phase.PROMOTED  # the 20 s window closed while nobody measured
    assert live(router) == (rc2, None, 0.0)
    with pytest.raises(NotFoundError):
        rollouts.resume(svc, ADA, "shop", "production")


def test_prometheus_check_compares_the_canary_with_the_stable_version(
    rt: Runtime, repo: GitRepo, router: MemoryRouter, clock: FixedClock
) -> None:
    prom = MemoryProvider()
    rt.services = replace(rt.services, metrics=lambda source: prom)
    rc1, rc2 = release_two(rt, repo)
    query = 'sum(rate(checkout_failures_total{{version="{v}"}}[10s]))'
    prom.set(query.format(v=rc1), 1.0)
    prom.set(query.format(v=rc2), 1.2)  # 20% worse: within max_increase 0.5, under max 2
    d = deployments.deploy(rt.services, ADA, "shop", rc2, "production", policy="business")
    drain(rt)
    clock.advance(seconds=10)
    drain(rt)
    prom.set(query.format(v=rc2), 1.8)  # 80% worse than stable: fails the comparison
    for _ in range(2):
        clock.advance(seconds=10)
        drain(rt)
    done, _ = deployments.get_deployment(rt.services, ADA, d.id)
    assert done.state is DeploymentState.FAILED
    assert live(router) == (rc1, None, 0.0)
    aborting = next(
        e.record
        for e in rollouts.explain(rt.services, ADA, "shop", d.id).records
        if e.record.kind == "aborting"
    )
    [check] = aborting.evidence["checks"]
    assert check["name"] == "checkout" and check["verdict"] == "fail"
    assert check["evidence"]["query"] == query.format(v=rc2)
    assert check["evidence"]["values"] == [1.2, 1.2, 1.8, 1.8]
    assert check["evidence"]["failed"] == ["1.8 > stable 1 × 1.5", "1.8 > stable 1 × 1.5"]
    assert query.format(v=rc1) in prom.asked  # the stable version was asked the same question
