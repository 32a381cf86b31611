"""The rollout page's view model and the time series behind it: pure functions over a Rollout."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shipyard.analysis.checks import CheckSpec, Snapshot
from shipyard.analysis.slices import ArmCounters
from shipyard.domain.rollouts import (
    Analysis,
    AnalysisRun,
    Pause,
    Phase,
    PolicySpec,
    Record,
    Rollout,
    SetWeight,
)
from shipyard.ports.repositories import RolloutRecordEntry
from shipyard.services.rollout_watch import RolloutWatch, cohort_rows, measurements, weights
from shipyard.web.views import (
    record_views,
    refresh_ms,
    rollout_page,
    share_text,
    steering,
    step_views,
)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
ERRORS = CheckSpec("errors", "router", metric="error_ratio", judge="threshold", max=0.05)
POLICY = PolicySpec(
    "canary",
    steps=(
        SetWeight(weight=10),
        Analysis(checks=(ERRORS,), interval_s=10, duration_s=30),
        SetWeight(weight=50),
        Pause(),
    ),
)
ROLLOUT = Rollout(1, 7, "shop", "production", "1.0.0-rc.2", "1.0.0-rc.1", POLICY, "ada", T0)


def entry(seconds: float, kind: str, step: int, **evidence: object) -> RolloutRecordEntry:
    return RolloutRecordEntry(
        T0 + timedelta(seconds=seconds), Record(kind, step, "engine", kind, evidence)
    )


def buckets(fast: float, slow: float) -> dict[float, float]:
    """Cumulative: ``fast`` requests under 25 ms, ``slow`` more under 250 ms."""
    return {0.025: fast, 0.25: fast + slow, float("inf"): fast + slow}


def test_steps_are_done_current_pending_and_the_rollback_marks_where_it_stopped() -> None:
    r = replace(ROLLOUT, step=1)
    assert [s.state for s in step_views(r)] == ["done", "current", "pending", "pending"]
    assert [s.description for s in step_views(r)][1] == "analysis: errors"
    failed = replace(r, phase=Phase.ROLLED_BACK)
    assert [s.state for s in step_views(failed)] == ["done", "failed", "pending", "pending"]
    done = replace(r, phase=Phase.PROMOTED, step=2)
    assert {s.state for s in step_views(done)} == {"done"}


def test_steering_follows_role_and_phase() -> None:
    r = replace(ROLLOUT, step=1)
    assert steering(r, may_steer=False) == ()
    assert steering(r, may_steer=True) == ("pause", "promote", "promote-full", "abort")
    by_human = replace(r, phase=Phase.PAUSED, pause_reason="paused by ada")
    assert steering(by_human, may_steer=True) == ("resume", "promote", "promote-full", "abort")
    at_pause_step = replace(r, phase=Phase.PAUSED, step=3, pause_reason="paused until promoted")
    assert steering(at_pause_step, may_steer=True) == ("promote", "promote-full", "abort")
    assert steering(replace(r, phase=Phase.ROLLED_BACK), may_steer=True) == ()
    assert steering(replace(r, stable=None), may_steer=True)[-1] != "abort"


def test_records_newest_first_with_checks_split_from_the_rest() -> None:
    check = {
        "name": "errors",
        "verdict": "fail",
        "reason": "2 of 2 failed",
        "dry_run": False,
        "value": 0.2,
        "baseline": 0.01,
        "evidence": {"failed": ["0.2 > max 0.05"]},
    }
    entries = [
        entry(0, "started", 0),
        entry(0, "weight", 0, weight=10.0, **{"from": 0.0}),
        entry(20, "aborting", 1, checks=[check], window_s=20.0),
    ]
    views = record_views(ROLLOUT, entries)
    assert [v.kind for v in views] == ["aborting", "weight", "started"]
    aborting = views[0]
    assert (aborting.tone, aborting.step, aborting.step_description) == (
        "bad",
        2,
        "analysis: errors",
    )
    [c] = aborting.checks
    assert (c.name, c.verdict, c.value, c.evidence) == (
        "errors",
        "fail",
        0.2,
        {"failed": ["0.2 > max 0.05"]},
    )
    assert aborting.rest == {"window_s": 20.0}
    assert views[1].rest == {"weight": 10.0, "from": 0.0} and views[1].checks == ()


def test_weights_follow_the_decisions() -> None:
    entries = [
        entry(0, "started", 0),
        entry(0, "weight", 0, weight=10.0),
        entry(30, "analysis", 1),
        entry(30, "weight", 2, weight=50.0),
        entry(40, "aborting", 3),
        entry(41, "rolled_back", 3),
    ]
    got = [((p.at - T0).total_seconds(), p.weight) for p in weights(ROLLOUT, entries)]
    assert got == [(0, 0.0), (0, 10.0), (30, 50.0), (40, 0.0)]


def test_measurements_are_the_intervals_between_snapshots() -> None:
    snaps = (
        Snapshot(0, ArmCounters(0, 0, buckets(0, 0)), ArmCounters(0, 0, buckets(0, 0))),
        Snapshot(10, ArmCounters(100, 20, buckets(50, 50)), ArmCounters(900, 9, buckets(900, 0))),
        Snapshot(
            20, ArmCounters(100, 20, buckets(50, 50)), ArmCounters(1800, 18, buckets(1800, 0))
        ),
    )
    r = replace(ROLLOUT, step=1, analysis=AnalysisRun(T0 + timedelta(seconds=5), snapshots=snaps))
    first, second = measurements(r)
    assert first.at == T0 + timedelta(seconds=15) and first.step == 1
    assert (first.canary.requests, first.canary.error_ratio) == (100, 0.2)
    assert first.stable is not None and first.stable.error_ratio == 0.01
    assert first.canary.latency_p95_s is not None and 0.025 < first.canary.latency_p95_s <= 0.25
    assert first.stable.latency_p95_s is not None and first.stable.latency_p95_s <= 0.025
    assert second.canary.requests == 0 and second.canary.error_ratio is None  # no traffic: a gap
    assert measurements(replace(r, analysis=None)) == ()
    # a passed analysis step's measurements stay, before the current step's
    later = replace(
        r,
        step=3,
        analysis=AnalysisRun(T0, snapshots=snaps[:2]),
        earlier_analyses=((1, r.analysis),),
    )
    assert [m.step for m in measurements(later)] == [1, 1, 3]


def test_the_page_model_draws_three_charts_and_refreshes_fast_only_while_active() -> None:
    snaps = (
        Snapshot(0, ArmCounters(0, 0), ArmCounters(0, 0)),
        Snapshot(10, ArmCounters(100, 1), ArmCounters(900, 9)),
    )
    r = replace(ROLLOUT, step=1, weight=10.0, analysis=AnalysisRun(T0, snapshots=snaps))
    entries = [entry(0, "started", 0), entry(0, "weight", 0, weight=10.0)]
    watch = RolloutWatch(
        r, entries, weights(r, entries), measurements(r), {}, None, T0 + timedelta(seconds=10)
    )
    page = rollout_page(watch, may_steer=False)
    assert page.refresh_ms == 2000 and page.actions == ()
    assert page.weight_chart.lines[0].last == "10%"
    stable, canary = page.error_chart.lines
    assert (stable.key, stable.last, canary.key, canary.last) == (
        "stable",
        "1.00%",
        "canary",
        "1.00%",
    )
    assert page.error_chart.y_ticks[-1].label == "1.00%"  # at least 1% high: a flat line sits low
    assert page.latency_chart.empty  # no histogram in these counters
    ended = rollout_page(
        replace(watch, rollout=replace(r, phase=Phase.PROMOTED, old_retired=True)), may_steer=True
    )
    assert ended.refresh_ms == 5000 and ended.actions == ()  # watches for the next rollout
    pinned = rollout_page(replace(watch, rollout=ended.rollout), may_steer=True, pinned=True)
    assert pinned.refresh_ms == 0  # one deployment's rollout: it no longer changes
    assert refresh_ms(None, pinned=False) == 5000 and refresh_ms(r, pinned=True) == 2000


def test_versions_show_the_last_measured_p95_not_a_rounded_average() -> None:
    snaps = (
        Snapshot(0, ArmCounters(0, 0, buckets(0, 0)), ArmCounters(0, 0, buckets(0, 0))),
        Snapshot(10, ArmCounters(100, 0, buckets(100, 0)), ArmCounters(900, 0, buckets(0, 900))),
        Snapshot(20, ArmCounters(100, 0, buckets(100, 0)), ArmCounters(900, 0, buckets(0, 900))),
    )
    r = replace(ROLLOUT, step=1, weight=10.0, analysis=AnalysisRun(T0, snapshots=snaps))
    watch = RolloutWatch(r, [], weights(r, []), measurements(r), {}, None, T0)
    p95 = rollout_page(watch, may_steer=False).p95
    # the canary's second interval had no traffic: its p95 is the first interval's
    assert p95[r.canary].endswith(" ms") and p95[r.canary] != "0 ms"
    assert float(p95[r.canary].removesuffix(" ms")) <= 25
    assert 25 < float(p95[str(r.stable)].removesuffix(" ms")) <= 250
    assert rollout_page(replace(watch, measurements=()), may_steer=False).p95[r.canary] == "—"


FLAG_POLICY = PolicySpec(
    "dark-launch",
    steps=(
        SetWeight(weight=0.1),
        Analysis(checks=(ERRORS,), interval_s=10, duration_s=20),
        SetWeight(weight=1),
    ),
    router="flag",
    flag="new-checkout",
)


def test_a_flag_rollout_shows_its_exact_share_cohorts_and_a_log_share_axis() -> None:
    r = replace(ROLLOUT, stable=None, policy=FLAG_POLICY, step=1, weight=0.1)
    entries = [entry(0, "started", 0), entry(0, "weight", 0, weight=0.1)]
    cohorts = cohort_rows(
        {
            "disabled": {"exposures": 990, "outcome.error": 1},
            "enabled": {"exposures": 10, "outcome.error": 2, "outcome.purchase": 3},
        }
    )
    assert [(c.variant, c.on, c.exposures, c.errors) for c in cohorts] == [
        ("enabled", True, 10, 2),
        ("disabled", False, 990, 1),
    ]
    watch = RolloutWatch(r, entries, weights(r, entries), (), {}, None, T0, cohorts)
    page = rollout_page(watch, may_steer=True)
    assert (page.flag, page.share, page.cohorts) == ("new-checkout", "0.1%", cohorts)
    assert page.actions[-1] == "abort"  # no stable version, but the flag's off users
    ticks = [t.label for t in page.weight_chart.y_ticks]
    assert ticks == ["0%", "0.1%", "1%", "10%", "100%"]
    assert page.weight_chart.lines[0].last == "0.1%"
    assert [line.label for line in page.error_chart.lines] == [
        "flag new-checkout off",
        "flag new-checkout on",
    ]
    assert share_text(0.0001) == "0.0001%" and share_text(12.5) == "12.5%"
    killed = rollout_page(
        replace(watch, rollout=replace(r, phase=Phase.ROLLED_BACK)), may_steer=True
    )
    assert killed.share == "0%"  # the kill path turned the flag off for everyone
