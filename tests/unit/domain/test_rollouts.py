"""The rollout core: decide() over policy steps, the human commands, route_of, blue-green.

Everything is pure: rollouts, policies and checks are built directly and time is passed in.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from shipyard.analysis.checks import CheckSpec, QueryResult
from shipyard.analysis.samples import Verdict
from shipyard.analysis.slices import ArmCounters
from shipyard.domain.auth import Role
from shipyard.domain.rollouts import (
    ACTIVE_PHASES,
    Analysis,
    AnalysisRun,
    Approval,
    Decision,
    Mirror,
    Observation,
    Pause,
    Phase,
    PolicySpec,
    Record,
    Retire,
    Rollout,
    RouteIntent,
    Segment,
    SegmentRule,
    SetWeight,
    StepSpec,
    abort,
    decide,
    ending_effects,
    finish,
    pause,
    promote,
    resume,
    route_of,
    start,
    wants,
)
from shipyard.errors import (
    ConflictError,
    ErrorCode,
    PermissionDenied,
    RefusedError,
    ShipyardError,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STABLE, CANARY = "1.4.0-rc.1", "1.4.0-rc.2"
REQUESTER = "ada"
APPROVER = [Role.APPROVER]
ADMIN = [Role.ADMIN]
DEPLOYER = [Role.DEPLOYER]

ERRORS = CheckSpec(
    "errors", "router", metric="error_ratio", judge="threshold", max=0.05, interval_s=10.0
)
SHADOW = replace(ERRORS, name="shadow", max=0.001, dry_run=True)
SEQUENTIAL = CheckSpec("seq", "router", metric="error_ratio", interval_s=10.0)
CHECKOUT = CheckSpec(
    "checkout", "prometheus", query="sum(rate(x[1m]))", judge="threshold", max=0.5, interval_s=10.0
)
BETA = SegmentRule("header", "x-beta", "1")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def policy(*steps: StepSpec, name: str = "p") -> PolicySpec:
    return PolicySpec(name, steps=steps)


def rollout(*steps: StepSpec, stable: str | None = STABLE, **kw: Any) -> Rollout:
    pol = kw.pop("policy", None) or policy(*steps)
    return Rollout(
        id=1,
        deployment_id=12,
        project="shop",
        environment="production",
        canary=CANARY,
        stable=stable,
        policy=pol,
        requested_by=REQUESTER,
        created_at=T0,
        **kw,
    )


def started(*steps: StepSpec, **kw: Any) -> Rollout:
    return start(rollout(*steps, **kw), T0).rollout


def weight(w: float) -> StepSpec:
    return SetWeight(weight=w)


def analysis(*checks: CheckSpec, **kw: Any) -> StepSpec:
    return Analysis(checks=checks or (ERRORS,), **kw)


def kinds(d: Decision) -> list[str]:
    return [x.kind for x in d.records]


@dataclass
class Traffic:
    """Cumulative router counters of both versions, as the engine reads them."""

    canary: ArmCounters = field(default_factory=lambda: ArmCounters(0.0))
    baseline: ArmCounters = field(default_factory=lambda: ArmCounters(0.0))

    def serve(self, requests: float = 1000.0, canary_errors: float = 0.0) -> Observation:
        c, b = self.canary, self.baseline
        self.canary = ArmCounters(c.requests + requests, c.errors + canary_errors)
        self.baseline = ArmCounters(b.requests + requests, b.errors)
        return self.now()

    def now(self) -> Observation:
        return Observation(self.canary, self.baseline)


def tick(r: Rollout, now: datetime, traffic: Traffic, **serve: float) -> Decision:
    """What the engine does at ``now``: measure what is wanted, then decide."""
    w = wants(r, now)
    obs = traffic.serve(**serve) if w.counters else None
    return decide(r, now, obs)


# --- start ----------------------------------------------------------------------------------


def test_start_records_the_policy_and_is_due_at_once() -> None:
    r = rollout(weight(5), analysis(), revision=3)
    d = start(r, T0)
    assert d.rollout == replace(r, step_started_at=T0, due_at=T0)
    assert d.records == (
        Record("started", 0, "engine", "rollout started: policy p (canary, 2 steps)"),
    )
    assert d.changed


@pytest.mark.parametrize("stable", [None, CANARY])
def test_start_of_a_first_version_takes_100_percent(stable: str | None) -> None:
    r = rollout(weight(5), stable=stable)
    d = start(r, T0)
    assert d.rollout.phase is Phase.PROMOTING
    assert (d.rollout.weight, d.rollout.due_at, d.rollout.reason) == (100.0, T0, "first version")
    assert d.records == (
        Record("promoting", 0, "engine", "nothing serves yet: the new version takes 100%"),
    )
    assert route_of(d.rollout) == RouteIntent(stable=CANARY)
    done = finish(d.rollout, at(1)).rollout
    assert (done.phase, done.old_retired, done.retire_at) == (Phase.PROMOTED, True, None)


# --- instant steps --------------------------------------------------------------------------


def test_instant_steps_chain_in_one_decide() -> None:
    mirror = Mirror(mirror=10.0)
    segment = Segment(segment=BETA)
    r = started(weight(5), segment, mirror, weight(20), Pause(duration_s=60))
    d = decide(r, at(1))
    assert d.records == (
        Record("weight", 0, "engine", "weight set to 5%", {"weight": 5.0, "from": 0.0}),
        Record(
            "segment", 1, "engine", "segment: header x-beta = '1'", {"segment": BETA.describe()}
        ),
        Record("mirror", 2, "engine", "mirroring 10% of requests", {"mirror": 10.0}),
        Record("weight", 3, "engine", "weight set to 20%", {"weight": 20.0, "from": 5.0}),
    )
    n = d.rollout
    assert (n.phase, n.step, n.weight, n.segment, n.mirror) == (
        Phase.PROGRESSING,
        4,
        20.0,
        BETA,
        10.0,
    )
    assert n.step_started_at == at(1)
    assert n.due_at == at(61)
    assert route_of(n) == RouteIntent(STABLE, CANARY, 20.0, BETA, 10.0)


def test_decide_does_not_touch_the_revision() -> None:
    r = started(weight(5), analysis(), revision=41)
    d = decide(r, at(1))
    assert d.rollout.revision == 41
    d = decide(d.rollout, at(1), Traffic().serve())
    assert d.rollout.revision == 41


# --- pauses ---------------------------------------------------------------------------------


def test_timed_pause_is_due_exactly_at_its_end() -> None:
    r = decide(started(weight(5), Pause(duration_s=60), weight(50)), T0).rollout
    assert (r.step, r.due_at) == (1, at(60))
    early = decide(r, at(59.999))
    assert early.records == ()
    assert early.rollout == replace(r, due_at=at(60))
    d = decide(r, at(60))
    assert kinds(d) == ["weight", "promoting"]
    assert d.rollout.phase is Phase.PROMOTING


def test_late_tick_starts_the_next_pause_at_the_tick() -> None:
    pause60 = Pause(duration_s=60)
    r = decide(started(pause60, pause60), T0).rollout
    d = decide(r, at(100))
    assert (d.rollout.step, d.rollout.step_started_at, d.rollout.due_at) == (1, at(100), at(160))
    assert d.records == ()


def test_pause_without_duration_waits_for_a_human() -> None:
    d = decide(started(weight(5), Pause(), weight(50)), T0)
    assert d.records[-1] == Record("paused", 1, "engine", "paused until promoted")
    r = d.rollout
    assert (r.phase, r.pause_reason, r.due_at, r.weight) == (
        Phase.PAUSED,
        "paused until promoted",
        None,
        5.0,
    )
    assert route_of(r) == RouteIntent(STABLE, CANARY, 5.0)
    assert decide(r, at(10_000)) == Decision(r)
    assert wants(r, at(10_000)) == wants(r, T0)
    assert not wants(r, T0).counters


# --- analysis -------------------------------------------------------------------------------


def test_analysis_start_asks_for_a_measurement_now() -> None:
    d = decide(started(weight(5), analysis(ERRORS, CHECKOUT)), at(2))
    r = d.rollout
    assert kinds(d) == ["weight"]
    assert r.analysis == AnalysisRun(started_at=at(2))
    assert r.due_at == at(2)
    w = wants(r, at(2))
    assert (w.counters, w.queries) == (True, (CHECKOUT,))


def test_wants_only_what_the_checks_need() -> None:
    r = decide(started(analysis(CHECKOUT)), T0).rollout
    w = wants(r, T0)
    assert (w.counters, w.queries) == (False, (CHECKOUT,))
    assert wants(decide(started(weight(5)), T0).rollout, T0) == type(w)()


def test_measurement_cadence_by_interval() -> None:
    traffic = Traffic()
    r = decide(started(analysis(duration_s=60)), T0).rollout
    r = decide(r, T0, traffic.serve()).rollout
    assert r.analysis is not None
    assert (r.analysis.last_at, len(r.analysis.snapshots), r.due_at) == (T0, 1, at(10))
    assert wants(r, at(9.9)) == type(wants(r, at(9.9)))()
    # an observation that is not due is ignored
    early = decide(r, at(5), traffic.serve())
    assert early.rollout == replace(r, due_at=at(10))
    assert wants(r, at(10)).counters
    r = decide(r, at(10), traffic.serve()).rollout
    assert r.analysis is not None
    assert [s.at for s in r.analysis.snapshots] == [0.0, 10.0]
    assert r.due_at == at(20)
    assert [x.verdict for x in r.analysis.results] == [Verdict.CONTINUE]
    # due but measured nothing: wait one interval from the last measurement
    assert decide(r, at(25)).rollout.due_at == at(20)


@pytest.mark.parametrize(
    ("step", "interval"),
    [
        (analysis(ERRORS, replace(CHECKOUT, interval_s=30.0)), 10.0),
        (analysis(ERRORS, interval_s=15.0), 15.0),
        (Analysis(), 60.0),
    ],
)
def test_interval_is_the_step_s_or_the_shortest_check_s(step: StepSpec, interval: float) -> None:
    r = decide(started(step, weight(5)), T0).rollout
    r = decide(r, T0, Traffic().serve()).rollout
    assert r.due_at == at(interval)


def test_window_defaults_to_five_intervals() -> None:
    traffic = Traffic()
    r = decide(started(analysis(), weight(50)), T0).rollout
    for s in range(0, 50, 10):
        d = tick(r, at(s), traffic)
        assert d.records == ()
        r = d.rollout
    d = tick(r, at(50), traffic)
    assert kinds(d) == ["analysis", "weight", "promoting"]
    assert d.records[0].evidence["window_s"] == 50.0
    assert d.records[0].evidence["checks"][0]["measurements"] == 5


def test_analysis_pass_goes_to_the_next_step() -> None:
    traffic = Traffic()
    r = decide(started(weight(5), analysis(duration_s=30), weight(25), analysis()), T0).rollout
    for s in (0, 10, 20):
        r = tick(r, at(s), traffic, canary_errors=10).rollout
    d = tick(r, at(30), traffic, canary_errors=10)
    assert kinds(d) == ["analysis", "weight"]
    passed = d.records[0]
    assert (passed.step, passed.actor, passed.message) == (1, "engine", "analysis passed")
    assert set(passed.evidence) == {"checks", "window_s"}
    assert passed.evidence["window_s"] == 30.0
    (check,) = passed.evidence["checks"]
    assert check["name"] == "errors"
    assert check["verdict"] == "pass"
    assert check["evidence"]["values"] == [0.01, 0.01, 0.01]
    n = d.rollout
    assert (n.phase, n.step, n.weight, n.step_started_at) == (Phase.PROGRESSING, 3, 25.0, at(30))
    assert n.analysis == AnalysisRun(started_at=at(30))  # the next analysis starts


def test_a_passed_analysis_keeps_its_measurements_for_views() -> None:
    traffic = Traffic()
    r = decide(started(weight(5), analysis(duration_s=30), weight(25), analysis()), T0).rollout
    for s in (0, 10, 20):
        r = tick(r, at(s), traffic, canary_errors=10).rollout
    passed = tick(r, at(30), traffic, canary_errors=10).rollout
    ((step, run),) = passed.earlier_analyses
    assert step == 1 and len(run.snapshots) == 4 and run.last_at == at(30)
    assert run.results[0].verdict is Verdict.PASS
    # a later analysis judges only its own measurements
    assert passed.analysis == AnalysisRun(started_at=at(30))
    skipped = promote(passed, user="ada", roles=DEPLOYER, now=at(31)).rollout
    assert [s for s, _ in skipped.earlier_analyses] == [1]  # nothing measured: nothing kept


def test_analysis_failure_aborts_with_evidence() -> None:
    traffic = Traffic()
    r = decide(started(weight(5), analysis(duration_s=60), weight(50)), T0).rollout
    r = tick(r, T0, traffic).rollout
    d = tick(r, at(10), traffic, canary_errors=500)
    why = "analysis failed: errors: 1 of 1 measurements failed (limit 0): 0.5 > max 0.05"
    n = d.rollout
    assert (n.phase, n.reason, n.due_at, n.step, n.weight) == (
        Phase.ABORTING,
        why,
        at(10),
        1,
        5.0,
    )
    (rec,) = d.records
    assert (rec.kind, rec.step, rec.actor, rec.message) == ("aborting", 1, "engine", why)
    assert rec.evidence["window_s"] == 10.0
    assert rec.evidence["checks"][0]["verdict"] == "fail"
    assert rec.evidence["checks"][0]["evidence"]["failed"] == ["0.5 > max 0.05"]
    assert n.analysis is not None and n.analysis.results[0].verdict is Verdict.FAIL
    assert route_of(n) == RouteIntent(stable=STABLE)
    assert decide(n, at(11)) == Decision(n)
    back = finish(n, at(12))
    assert back.rollout.phase is Phase.ROLLED_BACK
    assert back.records == (
        Record(
            "rolled_back",
            1,
            "engine",
            f"{STABLE} serves 100% of traffic again; {CANARY} stopped",
            {"reason": why},
        ),
    )
    assert (back.rollout.weight, back.rollout.finished_at, back.rollout.old_retired) == (
        0.0,
        at(12),
        True,
    )
    assert not back.rollout.active


def test_statistical_check_aborts_a_clearly_worse_canary() -> None:
    traffic = Traffic()
    r = decide(started(weight(20), analysis(SEQUENTIAL, duration_s=60)), T0).rollout
    r = tick(r, T0, traffic).rollout
    d = tick(r, at(10), traffic, canary_errors=100)
    assert d.rollout.phase is Phase.ABORTING
    assert d.rollout.reason.startswith("analysis failed: seq: canary is worse than baseline")
    check = d.records[0].evidence["checks"][0]
    assert check["evidence"]["judge"] == "sequential"


def test_inconclusive_at_window_end_pauses_with_the_reason() -> None:
    r = decide(started(weight(5), analysis(duration_s=20)), T0).rollout
    idle = Observation(ArmCounters(0.0), ArmCounters(0.0))
    r = decide(r, T0, idle).rollout
    d = decide(r, at(10), idle)
    assert d.records == ()
    assert d.rollout.phase is Phase.PROGRESSING
    d = decide(d.rollout, at(20), idle)
    why = "analysis inconclusive: errors: no data (router error_ratio)"
    n = d.rollout
    assert (n.phase, n.pause_reason, n.due_at, n.step) == (Phase.PAUSED, why, None, 1)
    (rec,) = d.records
    assert (rec.kind, rec.message) == ("paused", why)
    assert rec.evidence["checks"][0]["verdict"] == "inconclusive"
    assert rec.evidence["window_s"] == 20.0
    assert route_of(n) == RouteIntent(STABLE, CANARY, 5.0)


def test_dry_run_failure_is_recorded_once_and_never_acts() -> None:
    traffic = Traffic()
    r = decide(started(analysis(ERRORS, SHADOW, duration_s=30)), T0).rollout
    r = tick(r, T0, traffic).rollout
    seen: list[Record] = []
    for s in (10, 20):
        d = tick(r, at(s), traffic, canary_errors=10)
        seen.extend(d.records)
        r = d.rollout
        assert r.phase is Phase.PROGRESSING
    d = tick(r, at(30), traffic, canary_errors=10)
    seen.extend(d.records)
    assert [x.kind for x in seen] == ["dry_run", "analysis", "promoting"]
    dry = seen[0]
    assert dry.step == 0
    assert dry.message == (
        "dry-run check shadow failed: 1 of 1 measurements failed (limit 0): 0.01 > max 0.001"
    )
    assert dry.evidence["check"]["dry_run"] is True
    assert dry.evidence["check"]["verdict"] == "fail"
    assert d.rollout.phase is Phase.PROMOTING


def test_dry_run_failure_at_the_final_measurement_is_recorded_before_the_pass() -> None:
    traffic = Traffic()
    r = decide(started(analysis(ERRORS, SHADOW, duration_s=10)), T0).rollout
    r = tick(r, T0, traffic).rollout
    d = tick(r, at(10), traffic, canary_errors=10)
    assert kinds(d) == ["dry_run", "analysis", "promoting"]


def test_only_dry_run_checks_pass_when_the_window_ends() -> None:
    traffic = Traffic()
    r = decide(started(analysis(SHADOW, duration_s=20)), T0).rollout
    r = tick(r, T0, traffic).rollout
    d = tick(r, at(10), traffic, canary_errors=900)
    assert kinds(d) == ["dry_run"]
    assert d.rollout.phase is Phase.PROGRESSING
    d = tick(d.rollout, at(20), traffic, canary_errors=900)
    assert kinds(d) == ["analysis", "promoting"]


def test_prometheus_results_are_stored_at_seconds_since_the_start() -> None:
    r = decide(started(analysis(CHECKOUT, duration_s=20)), T0).rollout
    q = {"checkout": QueryResult(999.0, 0.1, query="q")}
    r = decide(r, T0, Observation(queries=q)).rollout
    r = decide(r, at(10), Observation(queries=q)).rollout
    assert r.analysis is not None
    assert r.analysis.snapshots == ()
    assert r.analysis.queries == {
        "checkout": (QueryResult(0.0, 0.1, query="q"), QueryResult(10.0, 0.1, query="q"))
    }
    d = decide(r, at(20), Observation(queries={"checkout": QueryResult(0.0, 0.9, query="q")}))
    assert d.rollout.phase is Phase.ABORTING
    assert d.rollout.reason == (
        "analysis failed: checkout: 1 of 3 measurements failed (limit 0): 0.9 > max 0.5"
    )


def test_all_steps_done_is_promoting() -> None:
    d = decide(started(weight(10), weight(30)), at(5))
    assert kinds(d) == ["weight", "weight", "promoting"]
    assert d.records[-1] == Record("promoting", 2, "engine", "all steps passed")
    n = d.rollout
    assert (n.phase, n.weight, n.due_at, n.reason) == (
        Phase.PROMOTING,
        100.0,
        at(5),
        "all steps passed",
    )
    assert route_of(n) == RouteIntent(stable=CANARY)
    assert decide(n, at(6)) == Decision(n)


def test_analysis_right_after_a_passed_analysis_is_due_at_once() -> None:
    traffic = Traffic()
    r = decide(started(analysis(duration_s=10), analysis(duration_s=30)), T0).rollout
    r = tick(r, T0, traffic).rollout
    d = tick(r, at(10), traffic)
    assert kinds(d) == ["analysis"]
    assert d.rollout.analysis == AnalysisRun(started_at=at(10))
    assert d.rollout.due_at == at(10)


def test_two_back_to_back_analyses_pass_a_healthy_canary() -> None:
    traffic = Traffic()
    r = started(analysis(duration_s=10), analysis(duration_s=10))
    for _ in range(10):
        if r.phase is not Phase.PROGRESSING:
            break
        assert r.due_at is not None
        r = tick(r, r.due_at, traffic).rollout
    assert r.phase is Phase.PROMOTING, r.pause_reason


# --- finish ---------------------------------------------------------------------------------


def test_finish_promoting_canary_policy_retires_at_once() -> None:
    r = decide(started(weight(50)), T0).rollout
    d = finish(r, at(3))
    n = d.rollout
    assert (n.phase, n.weight, n.due_at, n.retire_at, n.old_retired, n.finished_at) == (
        Phase.PROMOTED,
        100.0,
        None,
        None,
        True,
        at(3),
    )
    assert d.records == (
        Record(
            "promoted",
            1,
            "engine",
            f"{CANARY} serves 100% of traffic",
            {"reason": "all steps passed"},
        ),
    )
    assert not n.active
    assert finish(n, at(4)) == Decision(n)


def test_finish_does_nothing_while_progressing_or_paused() -> None:
    r = started(weight(5), Pause())
    assert finish(r, T0) == Decision(r)
    p = decide(r, T0).rollout
    assert finish(p, T0) == Decision(p)


# --- route_of per phase ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "intent"),
    [
        (Phase.PROGRESSING, RouteIntent(STABLE, CANARY, 25.0, BETA, 5.0)),
        (Phase.PAUSED, RouteIntent(STABLE, CANARY, 25.0, BETA, 5.0)),
        (Phase.PROMOTING, RouteIntent(stable=CANARY)),
        (Phase.PROMOTED, RouteIntent(stable=CANARY)),
        (Phase.ABORTING, RouteIntent(stable=STABLE)),
        (Phase.ROLLED_BACK, RouteIntent(stable=STABLE)),
    ],
)
def test_route_of_per_phase(phase: Phase, intent: RouteIntent) -> None:
    r = rollout(phase=phase, weight=25.0, segment=BETA, mirror=5.0)
    assert route_of(r) == intent


def test_active_phases() -> None:
    assert {p for p in Phase if rollout(phase=p, old_retired=True).active} == ACTIVE_PHASES
    assert rollout(phase=Phase.PROMOTED, old_retired=False).active


# --- promote --------------------------------------------------------------------------------


def test_promote_skips_a_timed_pause_and_runs_on() -> None:
    r = decide(started(weight(5), Pause(duration_s=600), weight(50)), T0).rollout
    d = promote(r, user="bob", roles=DEPLOYER, now=at(30))
    assert d.records == (
        Record("skipped", 1, "bob", "bob promoted past step 2: pause 600s"),
        Record("weight", 2, "engine", "weight set to 50%", {"weight": 50.0, "from": 5.0}),
        Record("promoting", 3, "engine", "all steps passed"),
    )
    assert d.rollout.phase is Phase.PROMOTING


def test_promote_past_a_pause_until_promoted() -> None:
    r = decide(started(Pause(), weight(50), analysis()), T0).rollout
    assert r.phase is Phase.PAUSED
    d = promote(r, user="bob", roles=DEPLOYER, now=at(7))
    assert kinds(d) == ["skipped", "weight"]
    assert d.records[0].message == "bob promoted past step 1: pause until promoted"
    n = d.rollout
    assert (n.phase, n.step, n.pause_reason, n.weight) == (Phase.PROGRESSING, 2, "", 50.0)
    assert n.analysis == AnalysisRun(started_at=at(7))
    assert n.due_at == at(7)


def test_promote_skips_a_running_analysis() -> None:
    traffic = Traffic()
    r = decide(started(analysis(), weight(50)), T0).rollout
    r = tick(r, T0, traffic).rollout
    d = promote(r, user="bob", roles=DEPLOYER, now=at(5))
    assert d.records[0].message == "bob promoted past step 1: analysis: errors"
    assert kinds(d) == ["skipped", "weight", "promoting"]
    assert d.rollout.analysis is None


def test_promote_past_an_inconclusive_analysis() -> None:
    r = rollout(
        analysis(),
        weight(50),
        Pause(),
        phase=Phase.PAUSED,
        pause_reason="analysis inconclusive: errors: no data",
        analysis=AnalysisRun(started_at=T0, last_at=at(50)),
    )
    d = promote(r, user="bob", roles=DEPLOYER, now=at(60))
    assert kinds(d) == ["skipped", "weight", "paused"]
    assert (d.rollout.step, d.rollout.pause_reason) == (2, "paused until promoted")


def test_promote_full_goes_to_100_percent() -> None:
    r = decide(started(weight(5), Pause(), weight(50)), T0).rollout
    d = promote(r, user="bob", roles=DEPLOYER, now=at(9), full=True)
    assert d.records == (Record("promoting", 1, "bob", "promoted to 100% by bob"),)
    n = d.rollout
    assert (n.phase, n.weight, n.due_at, n.pause_reason, n.reason) == (
        Phase.PROMOTING,
        100.0,
        at(9),
        "",
        "promoted to 100% by bob",
    )
    assert route_of(n) == RouteIntent(stable=CANARY)


def test_promote_with_no_step_left() -> None:
    r = rollout(weight(5), step=1, phase=Phase.PAUSED, pause_reason="paused by bob")
    d = promote(r, user="bob", roles=DEPLOYER, now=T0)
    assert d.records == (Record("promoting", 1, "bob", "promoted by bob"),)
    assert d.rollout.phase is Phase.PROMOTING


@pytest.mark.parametrize(
    "phase", [Phase.PROMOTING, Phase.ABORTING, Phase.PROMOTED, Phase.ROLLED_BACK]
)
@pytest.mark.parametrize("full", [False, True])
def test_promote_refused_once_decided(phase: Phase, full: bool) -> None:
    r = rollout(weight(5), phase=phase)
    with pytest.raises(ConflictError) as err:
        promote(r, user="bob", roles=ADMIN, now=T0, full=full)
    assert err.value.code is ErrorCode.INVALID_TRANSITION
    assert err.value.details == {"phase": phase.value}
    assert err.value.message == (
        f"cannot promote the rollout of {CANARY} in production: it is {phase.value}"
    )


# --- approvals ------------------------------------------------------------------------------


def gate(required: int = 1, approvers: tuple[str, ...] = ()) -> Rollout:
    step = Approval(required=required, approvers=approvers)
    return decide(started(weight(10), step, weight(60)), T0).rollout


def test_approval_step_pauses_and_says_how_many() -> None:
    d = decide(started(weight(10), Approval(required=2, approvers=("role:approver",))), T0)
    assert d.records[-1] == Record(
        "waiting",
        1,
        "engine",
        "waiting for 2 approval(s)",
        {"approvers": ["role:approver"], "required": 2},
    )
    n = d.rollout
    assert (n.phase, n.pause_reason, n.due_at) == (
        Phase.PAUSED,
        "waiting for 2 approval(s)",
        None,
    )
    assert Approval(required=2).describe() == "approval by 2"


def test_approvals_count_per_person_then_the_rollout_goes_on() -> None:
    r = gate(required=2)
    d = promote(r, user="bob", roles=APPROVER, now=at(1))
    assert d.records == (
        Record("approved", 1, "bob", "approved by bob (1/2)"),
        Record(
            "waiting",
            1,
            "engine",
            "waiting for 1 approval(s)",
            {"approvers": [], "required": 2},
        ),
    )
    r = d.rollout
    assert (r.phase, r.approvals, r.pause_reason) == (
        Phase.PAUSED,
        ("bob",),
        "waiting for 1 approval(s)",
    )
    with pytest.raises(ConflictError) as dup:
        promote(r, user="bob", roles=APPROVER, now=at(2))
    assert dup.value.code is ErrorCode.INVALID_TRANSITION
    assert dup.value.message == "bob already approved this step"
    d = promote(r, user="cy", roles=ADMIN, now=at(3))
    assert kinds(d) == ["approved", "weight", "promoting"]
    assert d.records[0].message == "approved by cy (2/2)"
    assert d.rollout.approvals == ()
    assert d.rollout.phase is Phase.PROMOTING


def test_the_requester_may_not_approve() -> None:
    r = gate()
    with pytest.raises(RefusedError) as err:
        promote(r, user=REQUESTER, roles=APPROVER, now=at(1))
    assert type(err.value) is RefusedError
    assert err.value.code is ErrorCode.SEPARATION_OF_DUTIES
    assert err.value.hint == "a second person with the approver role must approve"


@pytest.mark.parametrize(
    ("approvers", "user", "roles", "ok"),
    [
        ((), "bob", [Role.DEPLOYER], False),
        ((), "bob", [Role.VIEWER], False),
        ((), "bob", [], False),
        ((), "bob", [Role.APPROVER], True),
        ((), "bob", ["admin"], True),
        (("bob",), "bob", [Role.APPROVER], True),
        (("bob",), "cy", [Role.APPROVER], False),
        (("bob",), "bob", [Role.DEPLOYER], False),
        (("role:approver",), "bob", [Role.APPROVER], True),
        (("role:approver",), "bob", [Role.DEPLOYER], False),
        (("role:admin",), "bob", [Role.APPROVER], False),
        (("role:admin",), "bob", [Role.ADMIN], True),
        (("dee", "role:approver"), "bob", [Role.APPROVER], True),
    ],
)
def test_who_may_approve(approvers: tuple[str, ...], user: str, roles: list[Any], ok: bool) -> None:
    r = gate(approvers=approvers)
    if ok:
        d = promote(r, user=user, roles=roles, now=at(1))
        assert kinds(d)[0] == "approved"
        assert d.rollout.step == 3
        return
    with pytest.raises(PermissionDenied) as err:
        promote(r, user=user, roles=roles, now=at(1))
    assert err.value.code is ErrorCode.PERMISSION_DENIED
    assert err.value.message == f"{user} may not approve this rollout step"
    assert err.value.details == {"approvers": list(approvers)}


def test_permission_is_checked_before_separation_of_duties() -> None:
    with pytest.raises(PermissionDenied):
        promote(gate(), user=REQUESTER, roles=DEPLOYER, now=at(1))


def test_promote_full_does_not_bypass_a_pending_approval() -> None:
    r = gate(approvers=("role:approver",))
    with pytest.raises(RefusedError):
        promote(r, user=REQUESTER, roles=DEPLOYER, now=at(1), full=True)


# --- pause ----------------------------------------------------------------------------------


def test_pause_by_a_human() -> None:
    r = decide(started(weight(5), Pause(duration_s=60)), T0).rollout
    d = pause(r, user="bob", now=at(5))
    assert d.records == (Record("paused", 1, "bob", "paused by bob"),)
    n = d.rollout
    assert (n.phase, n.pause_reason, n.due_at, n.weight) == (
        Phase.PAUSED,
        "paused by bob",
        None,
        5.0,
    )
    assert decide(n, at(100)) == Decision(n)
    with pytest.raises(ConflictError) as err:
        pause(n, user="bob", now=at(6))
    assert err.value.message == "the rollout is already paused"
    assert err.value.code is ErrorCode.INVALID_TRANSITION


@pytest.mark.parametrize(
    "phase", [Phase.PROMOTING, Phase.ABORTING, Phase.PROMOTED, Phase.ROLLED_BACK]
)
def test_pause_refused_once_decided(phase: Phase) -> None:
    with pytest.raises(ConflictError) as err:
        pause(rollout(phase=phase), user="bob", now=T0)
    assert err.value.message == (
        f"cannot pause the rollout of {CANARY} in production: it is {phase.value}"
    )


# --- resume ---------------------------------------------------------------------------------


def test_resume_a_manual_pause_counts_the_paused_time_in_a_timed_pause() -> None:
    r = decide(started(Pause(duration_s=60), weight(50)), T0).rollout
    p = pause(r, user="bob", now=at(10)).rollout
    d = resume(p, user="cy", now=at(30))
    assert d.records == (Record("resumed", 0, "cy", "resumed by cy"),)
    assert (d.rollout.phase, d.rollout.due_at, d.rollout.pause_reason) == (
        Phase.PROGRESSING,
        at(60),
        "",
    )
    later = resume(p, user="cy", now=at(61))
    assert kinds(later) == ["resumed", "weight", "promoting"]


def test_resume_a_manual_pause_keeps_the_running_analysis() -> None:
    traffic = Traffic()
    r = decide(started(analysis(duration_s=60)), T0).rollout
    r = tick(r, T0, traffic).rollout
    r = tick(r, at(10), traffic).rollout
    p = pause(r, user="bob", now=at(12)).rollout
    d = resume(p, user="bob", now=at(40))
    assert d.records == (Record("resumed", 0, "bob", "resumed by bob"),)
    assert d.rollout.analysis == r.analysis
    assert d.rollout.step_started_at == r.step_started_at
    assert d.rollout.due_at == at(20)


def test_resume_an_inconclusive_analysis_measures_again_from_scratch() -> None:
    idle = Observation(ArmCounters(0.0), ArmCounters(0.0))
    r = decide(started(weight(5), analysis(duration_s=10)), T0).rollout
    r = decide(r, T0, idle).rollout
    r = decide(r, at(10), idle).rollout
    assert r.phase is Phase.PAUSED
    d = resume(r, user="bob", now=at(100))
    assert d.records == (Record("resumed", 1, "bob", "resumed by bob (analysis starts again)"),)
    n = d.rollout
    assert (n.phase, n.step, n.step_started_at, n.due_at, n.pause_reason) == (
        Phase.PROGRESSING,
        1,
        at(100),
        at(100),
        "",
    )
    assert n.analysis == AnalysisRun(started_at=at(100))
    assert wants(n, at(100)).counters


@pytest.mark.parametrize(
    ("step", "describe"),
    [
        (Pause(), "pause until promoted"),
        (Approval(required=1), "approval by 1"),
    ],
)
def test_resume_refused_where_only_promote_goes_on(step: StepSpec, describe: str) -> None:
    r = decide(started(weight(5), step), T0).rollout
    assert r.phase is Phase.PAUSED
    with pytest.raises(RefusedError) as err:
        resume(r, user="bob", now=at(1))
    assert err.value.code is ErrorCode.INVALID_TRANSITION
    assert err.value.message == f"the rollout waits at step 2 ({describe})"
    assert err.value.hint == "use `shipyard rollout promote` to go past it"


def test_resume_of_a_human_pause_on_a_waiting_step_runs_the_step_again() -> None:
    r = started(Pause(), weight(50))  # paused by a human before the first tick
    p = pause(r, user="bob", now=T0).rollout
    d = resume(p, user="bob", now=at(1))
    assert kinds(d) == ["resumed", "paused"]
    assert d.rollout.pause_reason == "paused until promoted"


def test_resume_refused_when_not_paused() -> None:
    r = decide(started(Pause(duration_s=60)), T0).rollout
    with pytest.raises(ConflictError) as err:
        resume(r, user="bob", now=at(1))
    assert err.value.message == "the rollout is not paused"
    with pytest.raises(ConflictError) as done:
        resume(rollout(phase=Phase.PROMOTED), user="bob", now=at(1))
    assert (
        done.value.message == f"cannot resume the rollout of {CANARY} in production: it is promoted"
    )


# --- abort ----------------------------------------------------------------------------------


@pytest.mark.parametrize("paused", [False, True])
def test_abort_puts_everything_back_on_stable(paused: bool) -> None:
    r = decide(started(weight(30), Pause(duration_s=None if paused else 60)), T0)
    d = abort(r.rollout, user="bob", now=at(4), reason="pager went off")
    assert d.records == (Record("aborting", 1, "bob", "aborted by bob: pager went off"),)
    n = d.rollout
    assert (n.phase, n.due_at, n.reason, n.weight) == (
        Phase.ABORTING,
        at(4),
        "aborted by bob: pager went off",
        30.0,
    )
    assert route_of(n) == RouteIntent(stable=STABLE)
    assert abort(r.rollout, user="bob", now=at(4)).rollout.reason == "aborted by bob"


@pytest.mark.parametrize(
    "phase", [Phase.PROMOTING, Phase.ABORTING, Phase.PROMOTED, Phase.ROLLED_BACK]
)
def test_abort_refused_once_decided(phase: Phase) -> None:
    with pytest.raises(ConflictError) as err:
        abort(rollout(phase=phase), user="bob", now=T0)
    assert err.value.code is ErrorCode.INVALID_TRANSITION
    assert err.value.details == {"phase": phase.value}
    assert err.value.message == (
        f"cannot abort the rollout of {CANARY} in production: it is {phase.value}"
    )


def test_abort_refused_for_a_first_version() -> None:
    r = rollout(weight(5), stable=None)
    with pytest.raises(RefusedError) as err:
        abort(r, user="bob", now=T0)
    assert err.value.code is ErrorCode.INVALID_TRANSITION
    assert err.value.message == (
        "nothing to go back to: this is the first version in the environment"
    )
    with pytest.raises(ConflictError):  # and once started it is already promoting
        abort(start(r, T0).rollout, user="bob", now=T0)


# --- commands keep the revision -------------------------------------------------------------


def test_commands_do_not_touch_the_revision() -> None:
    r = replace(decide(started(weight(5), Pause(), weight(9)), T0).rollout, revision=8)
    for d in (
        promote(r, user="bob", roles=DEPLOYER, now=at(1)),
        promote(r, user="bob", roles=DEPLOYER, now=at(1), full=True),
        resume(
            pause(replace(r, phase=Phase.PROGRESSING), user="b", now=T0).rollout, user="b", now=T0
        ),
        abort(r, user="bob", now=at(1)),
        finish(abort(r, user="bob", now=at(1)).rollout, at(2)),
    ):
        assert d.rollout.revision == 8


# --- blue-green -----------------------------------------------------------------------------


def test_blue_green_expansion() -> None:
    p = PolicySpec.blue_green(
        "switch", [weight(0)], [ERRORS], keep_old_for_s=1800, auto_switch=False, interval_s=5
    )
    assert (p.name, p.strategy, p.keep_old_for_s) == ("switch", "blue_green", 1800)
    assert [s.kind for s in p.steps] == ["segment", "analysis", "set_weight", "pause"]
    seg, checks, _, final = p.steps
    assert seg.segment == SegmentRule("header", "x-shipyard-preview")
    assert seg.describe() == (
        "preview: requests with header x-shipyard-preview go to the new version"
    )
    assert seg.segment.describe() == "header x-shipyard-preview present"
    assert (checks.checks, checks.interval_s, checks.label) == ((ERRORS,), 5, "preview checks")
    assert (final.duration_s, final.describe()) == (
        None,
        "waiting for promote to switch all traffic",
    )


def test_blue_green_auto_switch_without_preview_checks() -> None:
    p = PolicySpec.blue_green("s", [], [], keep_old_for_s=0, auto_switch=True)
    assert [s.kind for s in p.steps] == ["segment"]
    r = start(rollout(policy=p), T0).rollout
    d = decide(r, T0)
    assert kinds(d) == ["segment", "promoting"]
    done = finish(d.rollout, at(1)).rollout
    assert (done.phase, done.old_retired, done.retire_at) == (Phase.PROMOTED, True, None)


def test_blue_green_preview_checks_switch_and_keep_the_old_colour() -> None:
    p = PolicySpec.blue_green("switch", [], [ERRORS], keep_old_for_s=1800, auto_switch=False)
    traffic = Traffic()
    r = start(rollout(policy=p), T0).rollout
    assert r.due_at == T0
    d = decide(r, T0)
    assert d.records[0].message == (
        "preview: requests with header x-shipyard-preview go to the new version"
    )
    r = d.rollout
    assert route_of(r) == RouteIntent(
        STABLE, CANARY, 0.0, SegmentRule("header", "x-shipyard-preview")
    )
    for s in range(0, 50, 10):
        r = tick(r, at(s), traffic).rollout
    d = tick(r, at(50), traffic)
    assert kinds(d) == ["analysis", "paused"]
    r = d.rollout
    assert (r.phase, r.pause_reason, r.weight) == (
        Phase.PAUSED,
        "waiting for promote to switch all traffic",
        0.0,
    )
    with pytest.raises(RefusedError):
        resume(r, user="bob", now=at(60))
    d = promote(r, user="bob", roles=DEPLOYER, now=at(60))
    assert kinds(d) == ["skipped", "promoting"]
    assert d.records[0].message == (
        "bob promoted past step 3: waiting for promote to switch all traffic"
    )
    assert route_of(d.rollout) == RouteIntent(stable=CANARY)
    done = finish(d.rollout, at(61))
    n = done.rollout
    retire = at(61 + 1800)
    assert (n.phase, n.retire_at, n.due_at, n.old_retired, n.finished_at) == (
        Phase.PROMOTED,
        retire,
        retire,
        False,
        at(61),
    )
    assert n.active
    assert done.records[0].message == (
        f"{CANARY} serves 100% of traffic; {STABLE} stays ready until 2026-11-22T12:31:01+00:00"
    )
    retired = finish(n, retire)
    assert retired.records == (Record("retired", 3, "engine", f"{STABLE} stopped"),)
    assert (retired.rollout.old_retired, retired.rollout.due_at) == (True, None)
    assert not retired.rollout.active
    assert finish(retired.rollout, retire) == Decision(retired.rollout)


def test_blue_green_first_version_keeps_nothing() -> None:
    p = PolicySpec.blue_green("s", [], [], keep_old_for_s=600, auto_switch=False)
    r = start(rollout(policy=p, stable=None), T0).rollout
    n = finish(r, at(1)).rollout
    assert (n.retire_at, n.old_retired, n.due_at) == (None, True, None)


def test_redeploy_of_the_running_version_with_blue_green_keeps_it_running() -> None:
    """Redeploying the candidate that serves (stable == canary) has no old colour to keep: it
    used to be retired keep_old_for later, stopping the only instances, which nothing restarted."""
    p = PolicySpec.blue_green("s", [], [], keep_old_for_s=600, auto_switch=False)
    r = start(rollout(policy=p, stable=CANARY), T0).rollout
    assert r.phase is Phase.PROMOTING
    assert not any(isinstance(e, Retire) for e in ending_effects(r))
    d = finish(r, at(1))
    n = d.rollout
    assert (n.phase, n.retire_at, n.old_retired, n.due_at) == (Phase.PROMOTED, None, True, None)
    assert d.records[-1].message == f"{CANARY} serves 100% of traffic"
    stored = replace(n, old_retired=False, due_at=at(600))  # saved before the fix
    assert ending_effects(stored) == ()


def test_blue_green_failing_preview_checks_abort() -> None:
    p = PolicySpec.blue_green("s", [], [ERRORS], keep_old_for_s=600, auto_switch=True)
    traffic = Traffic()
    r = decide(start(rollout(policy=p), T0).rollout, T0).rollout
    r = tick(r, T0, traffic).rollout
    d = tick(r, at(10), traffic, canary_errors=200)
    assert d.rollout.phase is Phase.ABORTING
    n = finish(d.rollout, at(11)).rollout
    assert (n.phase, n.retire_at) == (Phase.ROLLED_BACK, None)


# --- properties -----------------------------------------------------------------------------

USERS = {
    "ada": [Role.DEPLOYER],  # the requester
    "bob": [Role.APPROVER],
    "cy": [Role.ADMIN],
    "dee": [Role.DEPLOYER],
}


@st.composite
def policies(draw: st.DrawFn) -> PolicySpec:
    n = draw(st.integers(0, 7))
    weights = iter(
        sorted(draw(st.lists(st.sampled_from([1.0, 5.0, 25.0, 50.0]), min_size=n, max_size=n)))
    )
    steps: list[StepSpec] = []
    for _ in range(n):
        kind = draw(
            st.sampled_from(["set_weight", "pause", "analysis", "approval", "segment", "mirror"])
        )
        if kind == "set_weight":
            steps.append(weight(next(weights)))
        elif kind == "pause":
            steps.append(Pause(duration_s=draw(st.sampled_from([None, 0.0, 15.0, 60.0]))))
        elif kind == "analysis":
            checks = draw(st.sampled_from([(ERRORS,), (ERRORS, SHADOW), (SHADOW,), (CHECKOUT,)]))
            steps.append(analysis(*checks, duration_s=draw(st.sampled_from([None, 10.0, 30.0]))))
        elif kind == "approval":
            steps.append(Approval(required=draw(st.integers(1, 2))))
        elif kind == "segment":
            steps.append(Segment(segment=BETA))
        else:
            steps.append(Mirror(mirror=draw(st.sampled_from([5.0, 20.0]))))
    if draw(st.booleans()):
        return PolicySpec.blue_green(
            "bg",
            steps,
            draw(st.sampled_from([[], [ERRORS]])),
            keep_old_for_s=draw(st.sampled_from([0.0, 60.0])),
            auto_switch=draw(st.booleans()),
        )
    return PolicySpec("p", steps=tuple(steps))


actions = st.one_of(
    st.tuples(
        st.just("tick"),
        st.sampled_from([0.0, 1.0, 10.0, 37.0]),
        st.sampled_from([0.0, 10.0, 400.0]),
    ),
    st.tuples(st.just("promote"), st.sampled_from(sorted(USERS)), st.booleans()),
    st.tuples(st.just("pause"), st.sampled_from(sorted(USERS)), st.none()),
    st.tuples(st.just("resume"), st.sampled_from(sorted(USERS)), st.none()),
    st.tuples(st.just("abort"), st.sampled_from(sorted(USERS)), st.none()),
    st.tuples(st.just("finish"), st.none(), st.none()),
)

FINISHED = (Phase.ROLLED_BACK, Phase.PROMOTED)


def _apply(r: Rollout, now: datetime, action: tuple[Any, Any, Any], traffic: Traffic) -> Decision:
    verb, a, b = action
    if verb == "tick":
        w = wants(r, now)
        obs = None
        if w.counters or w.queries:
            obs = traffic.serve(canary_errors=b)
            value = 0.9 if b > 100 else 0.1
            obs = replace(
                obs, queries={c.name: QueryResult(0.0, value, query="q") for c in w.queries}
            )
        return decide(r, now, obs)
    if verb == "finish":
        return finish(r, now)
    if verb == "promote":
        return promote(r, user=a, roles=USERS[a], now=now, full=b)
    if verb == "pause":
        return pause(r, user=a, now=now)
    if verb == "resume":
        return resume(r, user=a, now=now)
    return abort(r, user=a, now=now)


def _check_transition(r: Rollout, d: Decision, steps: int) -> None:
    n = d.rollout
    if r.phase is Phase.ROLLED_BACK or (r.phase is Phase.PROMOTED and r.old_retired):
        assert d == Decision(r)  # a finished rollout never changes
    assert n.revision == r.revision  # only the store bumps it
    assert r.step <= n.step <= steps
    assert all(0 <= rec.step <= steps for rec in d.records)
    waiting = (Phase.PROGRESSING, Phase.PAUSED)
    if r.phase in waiting and n.phase in waiting:
        assert n.weight >= r.weight  # weight never goes down while progressing
    if n.phase is Phase.PAUSED:
        assert (n.due_at, bool(n.pause_reason)) == (None, True)
    if n.phase is Phase.PROGRESSING:
        assert (n.due_at is not None, n.pause_reason) == (True, "")
    if n.phase is Phase.PROMOTING:
        assert n.weight == 100.0
    allowed = {
        Phase.PROMOTING: {Phase.PROMOTING, Phase.PROMOTED},
        Phase.ABORTING: {Phase.ABORTING, Phase.ROLLED_BACK},
        Phase.PROMOTED: {Phase.PROMOTED},
        Phase.ROLLED_BACK: {Phase.ROLLED_BACK},
    }
    assert n.phase in allowed.get(r.phase, set(Phase))


@settings(max_examples=300, deadline=None)
@given(
    pol=policies(),
    first=st.sampled_from([False, False, False, True]),
    script=st.lists(actions, max_size=30),
)
def test_random_commands_and_ticks_keep_the_invariants(
    pol: PolicySpec, first: bool, script: list[tuple[Any, Any, Any]]
) -> None:
    r = start(rollout(policy=pol, stable=None if first else STABLE, revision=5), T0).rollout
    traffic = Traffic()
    now = T0
    promoted = aborted = False
    for action in script:
        if action[0] == "tick":
            now += timedelta(seconds=action[1])  # time only moves forward
        try:
            d = _apply(r, now, action, traffic)
        except ShipyardError:
            continue  # refused: nothing changed
        _check_transition(r, d, len(pol.steps))
        r = d.rollout
        promoted = promoted or r.phase in (Phase.PROMOTING, Phase.PROMOTED)
        aborted = aborted or r.phase in (Phase.ABORTING, Phase.ROLLED_BACK)
        assert not (promoted and aborted)
        # after promotion or abort the route never names a canary again
        if promoted:
            assert route_of(r) == RouteIntent(stable=CANARY)
        if aborted:
            assert route_of(r) == RouteIntent(stable=STABLE)
    event(f"ended {r.phase.value}")
    # whatever happened, a full promote (by someone who may also approve) or the pending
    # finish drives it to the end
    with suppress(ShipyardError):
        r = promote(r, user="cy", roles=USERS["cy"], now=now, full=True).rollout
    while r.phase in (Phase.PROMOTING, Phase.ABORTING) or (
        r.phase is Phase.PROMOTED and not r.old_retired
    ):
        r = finish(r, now).rollout
    assert r.phase in FINISHED
    assert not r.active
    assert route_of(r).canary is None
