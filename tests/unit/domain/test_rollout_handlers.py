"""Each step handler, the effects decide() returns, and errors as decisions: pure, no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shipyard.analysis.checks import CheckSpec, QueryResult
from shipyard.analysis.slices import ArmCounters
from shipyard.domain import rollouts as ro
from shipyard.domain.rollouts import (
    HANDLERS,
    STEP_TYPES,
    Analysis,
    ApplyRoute,
    Approval,
    Drain,
    EffectFailure,
    FaultKind,
    Mirror,
    Observation,
    OnError,
    Pause,
    PauseReason,
    Phase,
    PolicySpec,
    RecordKind,
    Retire,
    Rollout,
    RouteIntent,
    Segment,
    SegmentRule,
    SetWeight,
    Step,
    StepKind,
)

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
STABLE, CANARY = "1.0.0-rc.1", "1.0.0-rc.2"
ERRORS = CheckSpec("errors", "router", metric="error_ratio", judge="threshold", max=0.05)
CHECKOUT = CheckSpec(
    "checkout", "prometheus", query="q", judge="threshold", max=1.0, interval_s=10.0
)
BETA = SegmentRule("header", "x-beta", "1")


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def rollout(*steps: Step, stable: str | None = STABLE, **policy: Any) -> Rollout:
    r = Rollout(
        1,
        7,
        "shop",
        "production",
        CANARY,
        stable,
        PolicySpec("p", steps=steps, **policy),
        "ada",
        T0,
    )
    return ro.start(r, T0).rollout


def handle(r: Rollout, obs: Observation | None = None, now: datetime = T0) -> ro.Decision:
    step = r.current_step
    assert step is not None
    return HANDLERS[type(step)](r, step, obs, now)


# --- the table ---------------------------------------------------------------------------------


def test_every_step_kind_has_a_type_and_a_handler() -> None:
    assert set(STEP_TYPES) == set(StepKind)
    assert set(HANDLERS) == set(STEP_TYPES.values())
    assert all(t.kind is k for k, t in STEP_TYPES.items())


def test_set_weight_handler_moves_the_weight_and_advances() -> None:
    d = handle(rollout(SetWeight(25)))
    assert (d.rollout.weight, d.rollout.step) == (25.0, 1)
    [rec] = d.records
    assert (rec.kind, rec.evidence) == (RecordKind.WEIGHT, {"weight": 25.0, "from": 0.0})


def test_segment_and_mirror_handlers_set_their_route() -> None:
    d = handle(rollout(Segment(BETA)))
    assert (d.rollout.segment, d.rollout.step, d.records[0].kind) == (BETA, 1, "segment")
    d = handle(rollout(Mirror(10)))
    assert (d.rollout.mirror, d.rollout.step, d.records[0].kind) == (10.0, 1, "mirror")


def test_pause_handler_waits_for_its_time_or_a_human() -> None:
    timed = rollout(Pause(30))
    assert handle(timed).rollout.due_at == at(30)
    assert handle(timed, now=at(30)).rollout.step == 1
    d = handle(rollout(Pause()))
    assert (d.rollout.phase, d.rollout.paused_for, d.rollout.due_at) == (
        Phase.PAUSED,
        PauseReason.PAUSE_STEP,
        None,
    )
    assert d.rollout.awaiting == "rollout promote"


def test_approval_handler_waits_until_enough_approvals() -> None:
    r = rollout(Approval(required=2))
    d = handle(r)
    assert (d.rollout.phase, d.rollout.paused_for) == (Phase.PAUSED, PauseReason.APPROVAL)
    assert d.records[0].evidence == {"approvers": [], "required": 2}
    assert handle(replace(r, approvals=("bob", "cy"))).rollout.step == 1


def test_analysis_handler_first_asks_for_a_measurement() -> None:
    d = handle(rollout(Analysis((ERRORS,), interval_s=10)))
    assert d.rollout.analysis is not None and d.rollout.due_at == T0
    assert ro.wants(d.rollout, T0).counters


def test_decide_returns_the_route_change_as_an_effect() -> None:
    d = ro.decide(rollout(SetWeight(10), Pause()), T0)
    assert d.effects == (ApplyRoute(RouteIntent(STABLE, CANARY, 10.0)),)
    assert ro.decide(d.rollout, T0).effects == ()  # paused: nothing to do


def test_ending_effects_route_before_they_retire() -> None:
    r = rollout(SetWeight(10))
    promoting = replace(r, phase=Phase.PROMOTING)
    assert ro.ending_effects(promoting) == (
        ApplyRoute(RouteIntent(CANARY)),
        Drain(),
        Retire(STABLE),
    )
    aborting = replace(r, phase=Phase.ABORTING)
    assert ro.ending_effects(aborting) == (
        ApplyRoute(RouteIntent(STABLE)),
        Drain(),
        Retire(CANARY),
    )


# --- errors as decisions -----------------------------------------------------------------------


def test_a_failed_tick_is_one_error_streak_with_a_bounded_backoff() -> None:
    r = ro.decide(rollout(SetWeight(10), Pause(600)), T0).rollout
    dues, records = [], []
    for k in range(3):
        d = ro.fault(r, FaultKind.ROUTER, "router down", at(k))
        r = d.rollout
        records.extend(d.records)
        dues.append((r.due_at - at(k)).total_seconds())  # type: ignore[operator]
    assert dues == [2.0, 4.0, 8.0]
    [rec] = records  # records are append-only: one when the streak begins
    assert rec.kind is RecordKind.ERROR and rec.evidence["streak"] == f"tick@{T0.isoformat()}"
    assert r.errors is not None  # the streak lives in the state, for status
    assert (r.errors.count, r.errors.first_at, r.errors.last_at) == (3, T0, at(2))
    assert r.phase is Phase.PROGRESSING and r.last_error == "router down"
    d = ro.fault(r, FaultKind.ROUTER, "router on fire", at(3))  # a distinct error: a record
    assert [(x.kind, x.evidence["consecutive"]) for x in d.records] == [
        ("error", 4),
        ("aborting", 4),  # and the 4th in a row is the default limit
    ]
    assert ro.backoff(50) == timedelta(seconds=60)  # never longer than a minute


def test_errors_reach_the_limit_and_abort_to_stable() -> None:
    r = ro.decide(rollout(SetWeight(10), Pause(600)), T0).rollout
    for k in range(4):
        d = ro.fault(r, FaultKind.INSTANCE, "rc.1 has no running instance", at(k))
        r = d.rollout
    assert r.phase is Phase.ABORTING and r.due_at == at(3)
    assert r.reason.startswith("aborted after errors: 4 errors in a row")
    [aborting] = d.records
    assert aborting.kind is RecordKind.ABORTING
    assert (aborting.evidence["count"], aborting.evidence["last_seen"]) == (4, at(3).isoformat())


def test_on_error_pause_waits_for_a_human_who_can_resume() -> None:
    r = ro.decide(rollout(SetWeight(10), Pause(600), on_error=OnError.PAUSE), T0).rollout
    for k in range(4):
        r = ro.fault(r, FaultKind.ROUTER, "boom", at(k)).rollout
    assert (r.phase, r.paused_for, r.due_at) == (Phase.PAUSED, PauseReason.ERRORS, None)
    assert "resume" in r.awaiting
    resumed = ro.resume(r, user="ada", now=at(9)).rollout
    assert resumed.phase is Phase.PROGRESSING and resumed.errors is None


def test_a_first_version_that_cannot_be_routed_pauses_for_a_human() -> None:
    r = rollout(SetWeight(10), stable=None)
    assert r.phase is Phase.PROMOTING
    failure = EffectFailure(ApplyRoute(RouteIntent(CANARY)), "no instance", FaultKind.INSTANCE)
    for k in range(4):
        r = ro.finish(r, at(k), (failure,)).rollout
    assert (r.phase, r.paused_for) == (Phase.PAUSED, PauseReason.ERRORS)
    again = ro.resume(r, user="ada", now=at(10)).rollout
    assert again.phase is Phase.PROMOTING  # the steps were done: it tries the promotion again


def test_abort_whose_route_keeps_failing_ends_rolled_back_saying_what_was_not_done() -> None:
    r = ro.abort(rollout(SetWeight(10)), user="ada", now=T0).rollout
    failure = EffectFailure(ApplyRoute(RouteIntent(STABLE)), "router down", FaultKind.ROUTER)
    for k in range(3):
        r = ro.finish(r, at(k), (failure,)).rollout
        assert r.phase is Phase.ABORTING and r.due_at is not None
    d = ro.finish(r, at(3), (failure,))
    assert d.rollout.phase is Phase.ROLLED_BACK and not d.rollout.active
    assert d.rollout.not_done == (
        f"could not route 100% of traffic to {STABLE}: router down (4 attempts)",
        f"{CANARY} was not stopped: traffic could not be moved off it",
    )
    assert d.records[-1].evidence["not_done"] == list(d.rollout.not_done)
    assert d.records[-1].evidence["errors"]["first_seen"] == T0.isoformat()


def test_abort_whose_canary_cannot_be_stopped_still_ends() -> None:
    r = ro.abort(rollout(SetWeight(10)), user="ada", now=T0).rollout
    failure = EffectFailure(Retire(CANARY), "kill failed", FaultKind.TARGET)
    for k in range(4):
        r = ro.finish(r, at(k), (failure,)).rollout
    assert r.phase is Phase.ROLLED_BACK
    assert r.not_done == (f"could not stop {CANARY}: kill failed (4 attempts)",)


def test_promotion_whose_route_keeps_failing_aborts_to_stable() -> None:
    r = replace(rollout(SetWeight(10)), phase=Phase.PROMOTING)
    failure = EffectFailure(ApplyRoute(RouteIntent(CANARY)), "router down", FaultKind.ROUTER)
    for k in range(4):
        r = ro.finish(r, at(k), (failure,)).rollout
    assert r.phase is Phase.ABORTING and r.errors is None  # the abort gets its own attempts
    assert r.reason.startswith("could not finish the promotion")


def test_a_failed_metric_query_is_an_error_of_its_check_not_of_the_tick() -> None:
    r = ro.decide(rollout(Analysis((CHECKOUT,), interval_s=10, duration_s=300)), T0).rollout
    err = Observation(errors={"checkout": (FaultKind.METRIC, "prometheus: timeout")})
    d = ro.decide(r, T0, err)
    assert d.rollout.phase is Phase.PROGRESSING and d.rollout.errors is None
    [rec] = d.records
    assert rec.kind is RecordKind.ERROR and rec.evidence["source"] == "check checkout"
    assert rec.evidence["error"] == "prometheus: timeout"
    # a good measurement ends the streak
    good = Observation(queries={"checkout": QueryResult(0.0, 0.1, query="q")})
    r2 = ro.decide(d.rollout, at(10), good).rollout
    assert r2.analysis is not None and r2.analysis.errors == {}


def test_measurement_errors_of_a_check_reach_its_own_limit() -> None:
    check = replace(CHECKOUT, consecutive_error_limit=2)
    r = ro.decide(rollout(Analysis((check,), interval_s=10, duration_s=300)), T0).rollout
    err = Observation(errors={"checkout": (FaultKind.METRIC, "timeout")})
    r = ro.decide(r, T0, err).rollout
    d = ro.decide(r, at(10), err)
    assert d.rollout.phase is Phase.ABORTING
    assert "check checkout: 2 measurement errors in a row: timeout" in d.rollout.reason
    assert "errors" in d.records[-1].evidence


def test_router_counters_that_cannot_be_read_are_errors_of_the_router_checks() -> None:
    r = ro.decide(rollout(Analysis((ERRORS, CHECKOUT), interval_s=10, duration_s=300)), T0)
    obs = Observation(
        queries={"checkout": QueryResult(0.0, 0.1, query="q")},
        errors={"errors": (FaultKind.ROUTER, "stats socket gone")},
    )
    d = ro.decide(r.rollout, T0, obs)
    assert [x.evidence["source"] for x in d.records] == ["check errors"]


def test_a_good_tick_after_errors_records_the_recovery() -> None:
    r = ro.decide(rollout(SetWeight(10), Pause(30)), T0).rollout
    r = ro.fault(r, FaultKind.ROUTER, "down", at(1)).rollout
    d = ro.decide(r, at(3))
    assert d.rollout.errors is None and d.rollout.last_error == ""
    assert d.records[0].kind is RecordKind.RECOVERED


def test_arms_counters_pass_through_the_analysis_handler() -> None:
    r = ro.decide(rollout(Analysis((ERRORS,), interval_s=10, duration_s=10)), T0).rollout
    r = ro.decide(r, T0, Observation(ArmCounters(1000.0, 1.0), ArmCounters(1000.0, 1.0))).rollout
    d = ro.decide(r, at(10), Observation(ArmCounters(2000.0, 2.0), ArmCounters(2000.0, 2.0)))
    assert d.rollout.phase is Phase.PROMOTING  # passed, then no steps left


@pytest.mark.parametrize("phase", [Phase.PROMOTED, Phase.ROLLED_BACK])
def test_faults_after_the_end_change_nothing_that_matters(phase: Phase) -> None:
    r = replace(rollout(SetWeight(10)), phase=phase, old_retired=True)
    d = ro.fault(r, FaultKind.OTHER, "late", T0)
    assert d.rollout.phase is phase and not d.rollout.active
