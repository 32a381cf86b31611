"""Flag-routed rollouts (``router: flag``) through the services and the engine, on both databases.

No proxy: the engine moves the flag's rollout, and the judges read the cohort counts an app
reports. The "app" here is the real SDK client evaluating the real flag state for a population
of users, so each cohort is exactly as large as the percentage the engine set.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import DeploymentState
from shipyard.domain.rollouts import Phase
from shipyard.errors import NotFoundError, PermissionDenied, RefusedError
from shipyard.sdk import FlagClient, StaticFlagSource
from shipyard.sdk.metrics import report_body
from shipyard.services import cohorts, deployments, flags, projects, releases, rollouts
from tests.support.gitrepo import GitRepo
from tests.support.runtime import memory_runtime, shop_repo, shop_yaml

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ADA = Actor("ada", Role.DEPLOYER)
ROOT = Actor("root", Role.ADMIN)
WEB = Actor("web", Role.APP)  # the application reporting its cohorts
FLAG = "new-checkout"
USERS = [f"user-{i}" for i in range(20_000)]

CONFIG = shop_yaml("""\
environments:
  - name: production
    target: {kind: memory}
    policy: dark-launch
policies:
  dark-launch:
    router: flag
    flag: new-checkout
    steps:
      - set_weight: 0.1
      - analysis: {checks: [errors], interval: 10s, duration: 20s}
      - set_weight: 1
      - analysis: {checks: [errors], interval: 10s, duration: 20s}
      - set_weight: 10
      - analysis: {checks: [errors], interval: 10s, duration: 20s}
checks:
  errors: {metric: error_ratio, judge: threshold, threshold: {max: 0.05}}
""")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def rt(tmp_path: Path, database_url: str, clock: FixedClock) -> Iterator[Runtime]:
    with memory_runtime(tmp_path, database_url, clock=clock) as runtime:
        yield runtime


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return shop_repo(tmp_path, CONFIG)


def drain(rt: Runtime) -> None:
    rt.worker().drain()


def built(rt: Runtime, repo: GitRepo) -> str:
    projects.add_project(rt.services, ROOT, str(repo.path))
    _, rc = releases.cut_release(rt.services, ADA, "shop")
    drain(rt)
    return rc.name


def percent(rt: Runtime) -> float | None:
    view = flags.show_flag(rt.services, ADA, "shop", "production", FLAG)
    return flags.rollout_of(view.flag.definition)


def app_traffic(rt: Runtime, canary_error_every: int = 0) -> int:
    """Every user makes one request through the real SDK; reports the counts like an app.

    Returns the size of the flag-on cohort. ``canary_error_every``: every n-th on-user fails."""
    _, doc = flags.state(rt.services, ADA, "shop", "production")
    client = FlagClient(StaticFlagSource(doc), refresh_interval=0)
    client.refresh()
    on = 0
    for user in USERS:
        ctx = {"userId": user}
        if client.is_enabled(FLAG, ctx):
            on += 1
            if canary_error_every and on % canary_error_every == 0:
                client.record_outcome(FLAG, "error", ctx)
        elif USERS.index(user) % 1000 == 0:
            client.record_outcome(FLAG, "error", ctx)  # the stable cohort's usual 0.1%
    body = report_body(client.drain_metrics())
    cohorts.report(rt.services, WEB, "shop", "production", uuid.uuid4().hex, body)
    return on


def flag_events(rt: Runtime) -> list[tuple[str, str, float | None, float | None]]:
    with rt.services.uow() as uow:
        out = []
        for e in uow.events.list(project="shop"):
            if e.kind.startswith("flag."):
                before, after = e.payload["before"], e.payload["after"]
                out.append(
                    (
                        e.kind,
                        e.actor,
                        flags.rollout_of(before) if before else None,
                        flags.rollout_of(after),
                    )
                )
        return out


def deploy(rt: Runtime, rc: str) -> int:
    flags.create_flag(rt.services, ADA, "shop", "production", FLAG, enabled=True, rollout=0)
    d = deployments.deploy(rt.services, ADA, "shop", rc, "production")
    drain(rt)
    return d.id


def test_healthy_flag_rollout_goes_from_a_tenth_of_a_percent_to_everyone(
    rt: Runtime, repo: GitRepo, clock: FixedClock
) -> None:
    rc = built(rt, repo)
    deployment_id = deploy(rt, rc)
    assert MemoryTarget.live[("shop", "production")] == {rc}  # shipped dark, no proxy
    seen: list[tuple[float | None, int]] = []
    for _ in range(12):  # until promoted: each analysis is three measurements, 10 s apart
        if percent(rt) == 100.0:
            break
        seen.append((percent(rt), app_traffic(rt)))
        clock.advance(seconds=10)
        drain(rt)
    steps = sorted({p for p, _ in seen if p is not None})
    assert steps == [0.1, 1.0, 10.0]
    on = {p: max(n for q, n in seen if q == p) for p in steps}
    assert 5 <= on[0.1] <= 60 and 100 <= on[1.0] <= 300 and 1_700 <= on[10.0] <= 2_300
    assert percent(rt) == 100.0
    done, _ = deployments.get_deployment(rt.services, ADA, deployment_id)
    assert done.state is DeploymentState.SUCCEEDED
    view = rollouts.status(rt.services, ADA, "shop", "production")
    assert view.rollout.phase is Phase.PROMOTED
    kinds = [
        e.record.kind for e in rollouts.explain(rt.services, ADA, "shop", deployment_id).records
    ]
    assert kinds[-3:] == ["analysis", "promoting", "promoted"]
    assert view.live[rollouts.cohort_label(view.rollout, True)].requests == sum(n for _, n in seen)
    assert flag_events(rt) == [
        ("flag.created", "ada", None, 0.0),
        ("flag.rollout", "shipyard", 0.0, 0.1),
        ("flag.rollout", "shipyard", 0.1, 1.0),
        ("flag.rollout", "shipyard", 1.0, 10.0),
        ("flag.rollout", "shipyard", 10.0, 100.0),
    ]


def test_failing_cohort_is_rolled_back_to_zero_percent_with_evidence(
    rt: Runtime, repo: GitRepo, clock: FixedClock
) -> None:
    rc = built(rt, repo)
    deployment_id = deploy(rt, rc)
    for _ in range(3):
        app_traffic(rt, canary_error_every=4)  # 25% of the flag-on users fail
        clock.advance(seconds=10)
        drain(rt)
    assert percent(rt) == 0.0
    done, _ = deployments.get_deployment(rt.services, ADA, deployment_id)
    assert done.state is DeploymentState.FAILED
    assert "analysis failed: errors: 2 of 2 measurements failed (limit 1)" in done.outcome
    view = rollouts.explain(rt.services, ADA, "shop", deployment_id)
    assert view.rollout.phase is Phase.ROLLED_BACK
    aborting = next(e.record for e in view.records if e.record.kind == "aborting")
    [check] = aborting.evidence["checks"]
    assert check["verdict"] == "fail"
    assert all(v >= 0.2 for v in check["evidence"]["values"])
    assert flag_events(rt)[-2:] == [
        ("flag.rollout", "shipyard", 0.0, 0.1),
        ("flag.rollout", "shipyard", 0.1, 0.0),
    ]
    assert MemoryTarget.live[("shop", "production")] == {rc}  # the code stays, dark


def test_abort_by_a_human_is_the_kill_path(rt: Runtime, repo: GitRepo) -> None:
    rc = built(rt, repo)
    deploy(rt, rc)
    assert percent(rt) == 0.1
    rollouts.abort(rt.services, ADA, "shop", "production", reason="pager")
    assert percent(rt) == 0.0  # written with the abort itself, before any engine tick
    drain(rt)
    assert rollouts.status(rt.services, ADA, "shop", "production").rollout.phase is (
        Phase.ROLLED_BACK
    )


def test_a_missing_or_killed_flag_is_refused_before_anything_is_stored(
    rt: Runtime, repo: GitRepo
) -> None:
    rc = built(rt, repo)
    with pytest.raises(NotFoundError, match="policy flag 'new-checkout' does not exist"):
        deployments.deploy(rt.services, ADA, "shop", rc, "production")
    flags.create_flag(rt.services, ADA, "shop", "production", FLAG, enabled=False, rollout=0)
    with pytest.raises(RefusedError, match="is off \\(kill switch\\)"):
        deployments.deploy(rt.services, ADA, "shop", rc, "production")
    with rt.services.uow() as uow:
        assert uow.deployments.history(uow.projects.get("shop")) == []  # type: ignore[arg-type]


def test_cohort_counters_map_on_and_off_users(rt: Runtime, repo: GitRepo) -> None:
    built(rt, repo)
    flags.create_flag(rt.services, ADA, "shop", "production", FLAG, enabled=True, rollout=0)
    body = {
        FLAG: {
            "enabled": {"exposures": 10, "outcomes": {"error": 2, "purchase": 3}},
            "blue": {"exposures": 5, "outcomes": {"error": 1}},
            "disabled": {"exposures": 100, "outcomes": {"error": 1}},
        },
        "no-such-flag": {"enabled": {"exposures": 1}},
    }
    got = cohorts.report(rt.services, WEB, "shop", "production", "batch-0001", body)
    assert (got.duplicate, got.counted, got.ignored) == (False, 7, ("no-such-flag",))
    again = cohorts.report(rt.services, WEB, "shop", "production", "batch-0001", body)
    assert again.duplicate and again.counted == 0
    with rt.services.uow() as uow:
        on, off = cohorts.counters(uow, uow.projects.get("shop"), "production", FLAG)  # type: ignore[arg-type]
    assert (on.requests, on.errors_5xx, off.requests, off.errors_5xx) == (15, 3, 100, 1)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.DEPLOYER, Role.APPROVER])
def test_only_apps_report_cohort_counts(rt: Runtime, repo: GitRepo, role: Role) -> None:
    """The counts judge a canary: a person who may only read them must not write them."""
    built(rt, repo)
    flags.create_flag(rt.services, ADA, "shop", "production", FLAG, enabled=True, rollout=0)
    body = {FLAG: {"disabled": {"exposures": 10, "outcomes": {"error": 9}}}}
    with pytest.raises(PermissionDenied):
        cohorts.report(rt.services, Actor("eve", role), "shop", "production", "batch-0002", body)
    assert cohorts.cohort_counters(rt.services, ADA, "shop", "production", FLAG) == {}
