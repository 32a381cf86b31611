"""evaluate(): one rollout check judged from the stored measurement history, purely."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from shipyard.analysis.checks import (
    CheckResult,
    CheckSpec,
    QueryResult,
    Snapshot,
    evaluate,
    interval_value,
    quantile_from_buckets,
)
from shipyard.analysis.samples import Verdict
from shipyard.analysis.slices import ArmCounters

INF = math.inf


def ratio_series(
    canary_rates: Sequence[float],
    baseline_rates: Sequence[float],
    *,
    per: float = 1000.0,
    dt: float = 60.0,
) -> list[Snapshot]:
    """Cumulative snapshots: each interval both arms serve ``per`` requests at the given rates."""
    out = [Snapshot(0.0, ArmCounters(0.0), ArmCounters(0.0))]
    errors_c = errors_b = 0.0
    for i, (rc, rb) in enumerate(zip(canary_rates, baseline_rates, strict=True), start=1):
        errors_c += rc * per
        errors_b += rb * per
        out.append(Snapshot(i * dt, ArmCounters(per * i, errors_c), ArmCounters(per * i, errors_b)))
    return out


def _fast(k: float) -> dict[float, float]:
    return {0.1: k, 0.5: k, 1.0: k, INF: k}


def _slow(k: float) -> dict[float, float]:  # every request between 0.5 s and 1 s
    return {0.1: 0.0, 0.5: 0.0, 1.0: k, INF: k}


def latency_series(intervals: int, *, canary_slow: bool, per: float = 1000.0) -> list[Snapshot]:
    out = []
    for i in range(intervals + 1):
        k = per * i
        canary = _slow(k) if canary_slow else _fast(k)
        out.append(Snapshot(60.0 * i, ArmCounters(k, 0.0, canary), ArmCounters(k, 0.0, _fast(k))))
    return out


def router(metric: str = "error_ratio", **kw: object) -> CheckSpec:
    return CheckSpec("c", "router", metric=metric, **kw)  # type: ignore[arg-type]


def threshold(metric: str = "error_ratio", **kw: object) -> CheckSpec:
    return CheckSpec("t", "router", metric=metric, judge="threshold", **kw)  # type: ignore[arg-type]


def prom(**kw: object) -> CheckSpec:
    return CheckSpec("q", "prometheus", query="sum(rate(x[1m]))", judge="threshold", **kw)  # type: ignore[arg-type]


STAT_EVIDENCE_KEYS = {
    "judge",
    "metric",
    "bound",
    "effect_interval",
    "canary_requests",
    "baseline_requests",
    "alpha",
}


# --- which checks are statistical ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "statistical"),
    [
        (router("error_ratio"), True),
        (router("latency_p95", judge="mann_whitney"), True),
        (router("request_rate"), False),
        (threshold("error_ratio"), False),
        (prom(), False),
        (CheckSpec("q", "prometheus", query="x", judge="sequential"), False),
    ],
)
def test_statistical_only_for_router_judges_on_ratio_and_latency(
    spec: CheckSpec, statistical: bool
) -> None:
    assert spec.statistical is statistical


# --- statistical: sequential -----------------------------------------------------------------


def test_sequential_fails_a_clearly_worse_canary_at_once() -> None:
    r = evaluate(router(), ratio_series([0.10, 0.10], [0.01, 0.01]))
    assert r.verdict is Verdict.FAIL
    assert r.reason == "canary is worse than baseline (e-value crossed 1/alpha)"
    assert (r.failures, r.failure_limit, r.measurements) == (1, 0, 2)
    assert r.value == pytest.approx(0.10)
    assert r.baseline == pytest.approx(0.01)
    assert STAT_EVIDENCE_KEYS | {"max e-value", "error-rate ratio"} == set(r.evidence)
    assert r.evidence["judge"] == "sequential"
    assert r.evidence["metric"] == "error_rate"
    assert r.evidence["canary_requests"] == 2000
    assert r.evidence["baseline_requests"] == 2000
    assert r.evidence["alpha"] == 0.02
    assert r.evidence["error-rate ratio"] == pytest.approx(10.0, rel=0.2)
    assert r.evidence["max e-value"] > r.evidence["bound"] == pytest.approx(50.0)


def test_sequential_equal_canary_continues_before_the_end() -> None:
    r = evaluate(router(), ratio_series([0.01] * 5, [0.01] * 5))
    assert r.verdict is Verdict.CONTINUE
    assert r.reason == "not enough evidence of harm yet"
    assert r.failures == 0
    assert r.measurements == 5


def test_sequential_equal_canary_with_enough_traffic_passes_at_the_end() -> None:
    r = evaluate(router(), ratio_series([0.05] * 5, [0.05] * 5, per=10000), final=True)
    assert r.verdict is Verdict.PASS
    assert r.reason == "any harm is smaller than the minimum effect"
    assert r.evidence["error-rate ratio"] == pytest.approx(1.0)
    low, high = r.evidence["effect_interval"]
    assert low < 1.0 < high < 1.25


def test_sequential_equal_canary_with_little_traffic_is_inconclusive_at_the_end() -> None:
    r = evaluate(router(), ratio_series([0.01], [0.01]), final=True)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reason == "window ended before harm was proven or ruled out"


@pytest.mark.parametrize(
    ("max_increase", "verdict"), [(0.2, Verdict.FAIL), (3.0, Verdict.CONTINUE)]
)
def test_sequential_max_increase_is_the_harm_that_counts(
    max_increase: float, verdict: Verdict
) -> None:
    snaps = ratio_series([0.03] * 5, [0.02] * 5, per=20000)  # canary 1.5x the baseline
    assert evaluate(router(max_increase=max_increase), snaps).verdict is verdict


def test_sequential_zero_errors_pass_by_the_default_tolerance() -> None:
    r = evaluate(router(), ratio_series([0.0] * 5, [0.0] * 5), final=True)
    assert r.verdict is Verdict.PASS
    assert r.evidence["pass_criterion"] == "negligible_increase"
    bounds = r.evidence["error_ratio_bounds"]
    assert bounds["negligible_increase"] == 0.001
    assert bounds["canary"][0] == 0.0 and bounds["stable"][0] == 0.0
    assert bounds["increase_at_most"] == pytest.approx(1 - 0.01 ** (1 / 5000))
    assert r.reason.endswith("below the negligible 0.1 points")


@pytest.mark.parametrize(
    ("tolerance", "verdict"), [(0.0, Verdict.INCONCLUSIVE), (0.01, Verdict.PASS)]
)
def test_sequential_negligible_increase_comes_from_the_check(
    tolerance: float, verdict: Verdict
) -> None:
    snaps = ratio_series([0.0] * 5, [0.0] * 5, per=200)  # 1,000 requests: 0.46 points at most
    r = evaluate(router(negligible_increase=tolerance), snaps, final=True)
    assert r.verdict is verdict
    assert ("error_ratio_bounds" in r.evidence) is (tolerance > 0)


def test_sequential_negligible_increase_leaves_latency_alone() -> None:
    snaps = latency_series(5, canary_slow=False)
    r = evaluate(router("latency_p95", negligible_increase=0.5), snaps, final=True)
    assert "error_ratio_bounds" not in r.evidence


def test_sequential_latency_from_histograms() -> None:
    spec = router("latency_p95")
    worse = evaluate(spec, latency_series(2, canary_slow=True))
    assert worse.verdict is Verdict.FAIL
    assert worse.evidence["metric"] == "latency"
    assert "P(canary slower)" in worse.evidence
    # the window's p95 of both versions, linear inside the bucket
    assert worse.value == pytest.approx(0.5 + 0.5 * 0.95)
    assert worse.baseline == pytest.approx(0.1 * 0.95)
    same = evaluate(spec, latency_series(2, canary_slow=False), final=True)
    assert same.verdict is Verdict.PASS
    assert same.value == same.baseline == pytest.approx(0.095)


# --- statistical: mann_whitney ---------------------------------------------------------------


def test_mann_whitney_fails_a_clearly_worse_canary() -> None:
    spec = router(judge="mann_whitney")
    r = evaluate(spec, ratio_series([0.10] * 3, [0.01] * 3))
    assert r.verdict is Verdict.FAIL
    assert r.reason == "canary higher than baseline"
    assert r.evidence["judge"] == "mann_whitney"
    assert r.evidence["mean ratio canary/baseline"] == pytest.approx(10.0)
    assert STAT_EVIDENCE_KEYS | {"Hodges-Lehmann shift", "mean ratio canary/baseline"} == set(
        r.evidence
    )


def test_mann_whitney_equal_canary_continues_then_passes() -> None:
    spec = router(judge="mann_whitney")
    snaps = ratio_series([0.01] * 3, [0.01] * 3)
    assert evaluate(spec, snaps).verdict is Verdict.CONTINUE
    final = evaluate(spec, snaps, final=True)
    assert final.verdict is Verdict.PASS
    assert final.reason == "all values equal"


@pytest.mark.parametrize(
    ("max_increase", "verdict"), [(0.2, Verdict.FAIL), (3.0, Verdict.CONTINUE)]
)
def test_mann_whitney_allowed_increase(max_increase: float, verdict: Verdict) -> None:
    spec = router(judge="mann_whitney", max_increase=max_increase)
    assert evaluate(spec, ratio_series([0.03] * 5, [0.02] * 5)).verdict is verdict


def test_mann_whitney_latency() -> None:
    spec = router("latency_p95", judge="mann_whitney")
    assert evaluate(spec, latency_series(2, canary_slow=True)).verdict is Verdict.FAIL
    assert evaluate(spec, latency_series(2, canary_slow=False), final=True).verdict is Verdict.PASS


# --- statistical: failure_limit --------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "intervals", "verdict", "failures"),
    [
        (0, 1, Verdict.FAIL, 1),
        (1, 1, Verdict.CONTINUE, 1),
        (1, 2, Verdict.FAIL, 2),
        (1, 3, Verdict.FAIL, 2),
        (2, 2, Verdict.CONTINUE, 2),
        (2, 3, Verdict.FAIL, 3),
    ],
)
def test_failure_limit_tolerates_that_many_latest_failing_measurements(
    limit: int, intervals: int, verdict: Verdict, failures: int
) -> None:
    spec = router(failure_limit=limit)
    r = evaluate(spec, ratio_series([0.10] * intervals, [0.01] * intervals))
    assert (r.verdict, r.failures, r.failure_limit, r.measurements) == (
        verdict,
        failures,
        limit,
        intervals,
    )


def test_failure_limit_tolerated_failure_at_the_end_is_inconclusive() -> None:
    r = evaluate(router(failure_limit=1), ratio_series([0.10], [0.01]), final=True)
    assert (r.verdict, r.failures) == (Verdict.INCONCLUSIVE, 1)


def test_failure_limit_counts_only_the_latest_consecutive_failures() -> None:
    snaps = ratio_series([0.01, 0.01, 0.01, 0.5], [0.01] * 4)  # only the last interval is bad
    assert evaluate(router(), snaps).verdict is Verdict.FAIL
    tolerated = evaluate(router(failure_limit=1), snaps)
    assert (tolerated.verdict, tolerated.failures) == (Verdict.CONTINUE, 1)


# --- statistical: missing data ---------------------------------------------------------------


def test_statistical_without_measurements_has_no_data() -> None:
    r = evaluate(router(), [])
    assert r.verdict is Verdict.NO_DATA
    assert r.reason == "no measurement yet"
    assert (r.value, r.baseline, r.measurements, r.failures) == (None, None, 0, 0)
    assert r.evidence == {}


def test_statistical_without_a_stable_version_has_no_data() -> None:
    snaps = [Snapshot(0.0, ArmCounters(0.0)), Snapshot(60.0, ArmCounters(100.0, 1.0))]
    r = evaluate(router(), snaps)
    assert r.verdict is Verdict.NO_DATA
    assert r.reason == "no stable version to compare with"
    assert r.value == pytest.approx(0.01)
    assert r.baseline is None


def test_statistical_without_traffic_becomes_inconclusive_at_the_end() -> None:
    snaps = [
        Snapshot(0.0, ArmCounters(0.0), ArmCounters(0.0)),
        Snapshot(60.0, ArmCounters(0.0), ArmCounters(0.0)),
    ]
    assert evaluate(router(), snaps).verdict is Verdict.NO_DATA
    final = evaluate(router(), snaps, final=True)
    assert final.verdict is Verdict.INCONCLUSIVE
    assert final.value is None


def test_statistical_single_snapshot_reason_is_not_about_the_stable_version() -> None:
    r = evaluate(router(), [Snapshot(0.0, ArmCounters(0.0), ArmCounters(0.0))])
    assert r.verdict is Verdict.NO_DATA
    assert "stable" not in r.reason


def test_statistical_no_data_is_inconclusive_at_the_end_whatever_the_cause() -> None:
    assert evaluate(router(), [], final=True).verdict is Verdict.INCONCLUSIVE


# --- per-interval thresholds over router snapshots -------------------------------------------


def test_threshold_per_interval_values_and_verdicts() -> None:
    snaps = ratio_series([0.01, 0.02, 0.03], [0.0, 0.0, 0.0])
    spec = threshold(max=0.05)
    going = evaluate(spec, snaps)
    assert going.verdict is Verdict.CONTINUE
    assert going.reason == "0 of 3 measurements failed (limit 0)"
    assert going.value == pytest.approx(0.03)
    assert going.baseline == 0.0
    assert (going.failures, going.measurements, going.dry_run) == (0, 3, False)
    assert going.evidence == {
        "query": "router error_ratio",
        "values": [0.01, 0.02, 0.03],
        "failed": [],
        "max": 0.05,
        "min": None,
        "max_increase": None,
    }
    assert evaluate(spec, snaps, final=True).verdict is Verdict.PASS


def test_threshold_value_equal_to_max_passes() -> None:
    r = evaluate(threshold(max=0.05), ratio_series([0.05], [0.0]), final=True)
    assert r.verdict is Verdict.PASS


def test_threshold_fails_past_failure_limit() -> None:
    snaps = ratio_series([0.10, 0.01, 0.20], [0.0] * 3)
    tolerated = evaluate(threshold(max=0.05, failure_limit=2), snaps)
    assert tolerated.verdict is Verdict.CONTINUE
    assert tolerated.failures == 2
    r = evaluate(threshold(max=0.05, failure_limit=1), snaps)
    assert r.verdict is Verdict.FAIL
    assert r.reason == "2 of 3 measurements failed (limit 1): 0.2 > max 0.05"
    assert r.evidence["failed"] == ["0.1 > max 0.05", "0.2 > max 0.05"]
    assert (r.failures, r.failure_limit, r.measurements) == (2, 1, 3)


def test_threshold_fail_is_fail_before_the_end() -> None:
    r = evaluate(threshold(max=0.05), ratio_series([0.5], [0.0]))
    assert r.verdict is Verdict.FAIL
    assert r.reason == "1 of 1 measurements failed (limit 0): 0.5 > max 0.05"


def test_threshold_keeps_the_last_twenty_values_and_five_failures() -> None:
    rates = [0.1 + i / 1000 for i in range(25)]
    r = evaluate(threshold(max=0.05, failure_limit=100), ratio_series(rates, [0.0] * 25))
    assert r.evidence["values"] == [round(x, 6) for x in rates[-20:]]
    assert len(r.evidence["failed"]) == 5
    assert r.evidence["failed"][-1] == "0.124 > max 0.05"
    assert (r.failures, r.measurements, r.verdict) == (25, 25, Verdict.CONTINUE)


def test_request_rate_with_min() -> None:
    snaps = [
        Snapshot(0.0, ArmCounters(0.0), ArmCounters(0.0)),
        Snapshot(10.0, ArmCounters(50.0), ArmCounters(500.0)),
        Snapshot(20.0, ArmCounters(250.0), ArmCounters(1000.0)),
    ]
    spec = router("request_rate", min=10.0)
    assert not spec.statistical
    r = evaluate(spec, snaps, final=True)
    assert r.verdict is Verdict.FAIL
    assert r.reason == "1 of 2 measurements failed (limit 0): 5 < min 10"
    assert r.evidence["values"] == [5.0, 20.0]
    assert r.evidence["query"] == "router request_rate"
    assert (r.value, r.baseline) == (20.0, 50.0)


def test_request_rate_without_traffic_is_zero_not_missing() -> None:
    snaps = [
        Snapshot(0.0, ArmCounters(10.0), ArmCounters(0.0)),
        Snapshot(30.0, ArmCounters(10.0), ArmCounters(0.0)),
    ]
    r = evaluate(router("request_rate", min=1.0), snaps)
    assert r.verdict is Verdict.FAIL
    assert r.value == 0.0


def test_latency_p95_threshold_from_histogram_buckets() -> None:
    spec = threshold("latency_p95", max=0.3)
    slow = evaluate(spec, latency_series(2, canary_slow=True), final=True)
    assert slow.verdict is Verdict.FAIL
    assert slow.evidence["values"] == [0.975, 0.975]
    assert slow.reason == "2 of 2 measurements failed (limit 0): 0.975 > max 0.3"
    fast = evaluate(spec, latency_series(2, canary_slow=False), final=True)
    assert fast.verdict is Verdict.PASS
    assert fast.value == pytest.approx(0.095)


def test_compare_baseline_with_max_increase() -> None:
    snaps = ratio_series([0.06], [0.05])
    spec = threshold(compare_baseline=True, max_increase=0.1)
    r = evaluate(spec, snaps)
    assert r.verdict is Verdict.FAIL
    assert r.reason == "1 of 1 measurements failed (limit 0): 0.06 > stable 0.05 × 1.1"
    assert r.evidence["max_increase"] == 0.1
    assert r.baseline == pytest.approx(0.05)
    within = evaluate(spec, ratio_series([0.054], [0.05]), final=True)
    assert within.verdict is Verdict.PASS


def test_max_increase_without_compare_baseline_is_ignored() -> None:
    r = evaluate(threshold(max_increase=0.1), ratio_series([0.06], [0.05]), final=True)
    assert r.verdict is Verdict.PASS
    assert r.evidence["max_increase"] is None


def test_compare_baseline_needs_a_nonzero_stable_value() -> None:
    spec = threshold(compare_baseline=True, max_increase=0.1)
    assert evaluate(spec, ratio_series([0.06], [0.0]), final=True).verdict is Verdict.PASS
    no_stable = [
        Snapshot(0.0, ArmCounters(0.0)),
        Snapshot(60.0, ArmCounters(100.0, 6.0)),
    ]
    r = evaluate(spec, no_stable, final=True)
    assert (r.verdict, r.baseline) == (Verdict.PASS, None)


def test_no_traffic_is_no_data_continue_then_inconclusive() -> None:
    snaps = [
        Snapshot(0.0, ArmCounters(0.0), ArmCounters(0.0)),
        Snapshot(60.0, ArmCounters(0.0), ArmCounters(10.0)),
    ]
    spec = threshold(max=0.05)
    going = evaluate(spec, snaps)
    assert going.verdict is Verdict.CONTINUE
    assert going.reason == "no data (router error_ratio)"
    assert (going.value, going.measurements) == (None, 0)
    final = evaluate(spec, snaps, final=True)
    assert final.verdict is Verdict.INCONCLUSIVE
    assert final.reason == "no data (router error_ratio)"


@pytest.mark.parametrize("count", [0, 1])
def test_fewer_than_two_snapshots_is_no_data(count: int) -> None:
    snaps = [Snapshot(0.0, ArmCounters(0.0), ArmCounters(0.0))][:count]
    r = evaluate(threshold(max=0.05), snaps, final=True)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reason == "no data"
    assert r.evidence["query"] == "router error_ratio"


def test_intervals_without_traffic_are_skipped_among_measured_ones() -> None:
    snaps = ratio_series([0.01], [0.0])
    snaps.append(Snapshot(120.0, snaps[-1].canary, snaps[-1].baseline))  # an idle interval
    r = evaluate(threshold(max=0.05), snaps, final=True)
    assert r.verdict is Verdict.PASS
    assert r.measurements == 1
    assert r.evidence["values"] == [0.01]


def test_router_threshold_without_metric_judges_error_ratio() -> None:
    spec = CheckSpec("t", "router", judge="threshold", max=0.05)
    r = evaluate(spec, ratio_series([0.1], [0.0]))
    assert r.verdict is Verdict.FAIL
    assert r.evidence["query"] == "router error_ratio"


# --- per-interval over Prometheus query results ----------------------------------------------


def test_prometheus_history_against_max() -> None:
    history = [
        QueryResult(0.0, 0.1, query="q1"),
        QueryResult(30.0, 0.7, query="q2"),
        QueryResult(60.0, 0.2, query="q3"),
    ]
    spec = prom(max=0.5, failure_limit=1)
    r = evaluate(spec, [], history)
    assert r.verdict is Verdict.CONTINUE
    assert r.reason == "1 of 3 measurements failed (limit 1)"
    assert r.evidence["query"] == "q3"
    assert r.evidence["values"] == [0.1, 0.7, 0.2]
    assert r.evidence["failed"] == ["0.7 > max 0.5"]
    assert (r.value, r.failures, r.measurements) == (0.2, 1, 3)
    assert evaluate(spec, [], history, final=True).verdict is Verdict.PASS
    history.append(QueryResult(90.0, 0.9, query="q4"))
    failed = evaluate(spec, [], history)
    assert failed.verdict is Verdict.FAIL
    assert failed.reason == "2 of 4 measurements failed (limit 1): 0.9 > max 0.5"


def test_prometheus_ignores_snapshots() -> None:
    r = evaluate(prom(max=0.5), ratio_series([0.9], [0.0]), [], final=True)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reason == "no data"


def test_prometheus_compare_baseline() -> None:
    spec = prom(compare_baseline=True, max_increase=0.5)
    r = evaluate(spec, [], [QueryResult(0.0, 2.0, 1.0, "q")])
    assert r.verdict is Verdict.FAIL
    assert r.reason == "1 of 1 measurements failed (limit 0): 2 > stable 1 × 1.5"
    assert (r.value, r.baseline) == (2.0, 1.0)
    ok = evaluate(spec, [], [QueryResult(0.0, 1.5, 1.0, "q")], final=True)
    assert ok.verdict is Verdict.PASS
    missing = evaluate(spec, [], [QueryResult(0.0, 9.0, None, "q")], final=True)
    assert missing.verdict is Verdict.PASS


def test_prometheus_no_data_measurements_are_skipped() -> None:
    history = [QueryResult(0.0, None, reason="empty result"), QueryResult(30.0, 0.1, query="q")]
    r = evaluate(prom(max=0.5), [], history, final=True)
    assert (r.verdict, r.measurements, r.value) == (Verdict.PASS, 1, 0.1)


def test_prometheus_all_no_data_names_the_reason() -> None:
    history = [QueryResult(0.0, None, reason="timeout"), QueryResult(30.0, None, reason="empty")]
    spec = prom(max=0.5)
    assert evaluate(spec, [], history).verdict is Verdict.CONTINUE
    r = evaluate(spec, [], history, final=True)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.reason == "no data (empty)"
    assert r.evidence["query"] == ""  # no query text was recorded


def test_prometheus_no_data_reason_wins_over_the_query_text() -> None:
    # the engine stores QueryResult(0.0, None, base, got.query, got.reason) for NoData
    history = [QueryResult(0.0, None, None, "sum(rate(x[1m]))", "empty result")]
    r = evaluate(prom(max=0.5), [], history, final=True)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert "empty result" in r.reason


def test_dry_run_is_carried_into_the_result() -> None:
    spec = threshold(max=0.05, dry_run=True)
    r = evaluate(spec, ratio_series([0.5], [0.0]))
    assert r.verdict is Verdict.FAIL
    assert r.dry_run is True
    stat = evaluate(router(dry_run=True), ratio_series([0.5], [0.0]))
    assert stat.dry_run is True


def test_to_dict_is_plain() -> None:
    r = evaluate(threshold(max=0.05), ratio_series([0.01], [0.0]))
    d = r.to_dict()
    assert d["verdict"] == "continue"
    assert d["name"] == "t"
    assert isinstance(d["evidence"], dict)
    assert set(d) == set(CheckResult.__dataclass_fields__)


def test_evaluate_is_pure_and_repeatable() -> None:
    snaps = ratio_series([0.10, 0.10, 0.10], [0.01] * 3)
    spec = router(failure_limit=1)
    assert evaluate(spec, snaps) == evaluate(spec, tuple(snaps))


# --- quantile_from_buckets -------------------------------------------------------------------


def test_quantile_from_buckets_is_linear_inside_the_bucket() -> None:
    buckets = {0.1: 50.0, 0.2: 90.0, 0.5: 100.0, INF: 100.0}
    assert quantile_from_buckets(buckets, 0.5) == pytest.approx(0.1)
    assert quantile_from_buckets(buckets, 0.25) == pytest.approx(0.05)  # first bucket from 0
    assert quantile_from_buckets(buckets, 0.7) == pytest.approx(0.15)
    assert quantile_from_buckets(buckets, 0.95) == pytest.approx(0.35)


def test_quantile_from_buckets_in_the_infinite_bucket_is_the_highest_finite_bound() -> None:
    assert quantile_from_buckets({0.1: 10.0, 0.5: 20.0, INF: 100.0}, 0.95) == 0.5


def test_quantile_from_buckets_unsorted_input() -> None:
    assert quantile_from_buckets({INF: 10.0, 1.0: 10.0, 0.5: 0.0}, 0.5) == pytest.approx(0.75)


@pytest.mark.parametrize(
    "buckets",
    [{}, {0.1: 0.0, INF: 0.0}, {INF: 5.0}],
    ids=["empty", "no-observations", "only-inf"],
)
def test_quantile_from_buckets_none(buckets: dict[float, float]) -> None:
    assert quantile_from_buckets(buckets, 0.95) is None


def test_quantile_from_buckets_empty_lower_buckets_return_the_bound() -> None:
    assert quantile_from_buckets({0.1: 0.0, 0.2: 0.0, 0.5: 10.0}, 0.0) == 0.1


# --- interval_value --------------------------------------------------------------------------


def test_interval_value_error_ratio_and_request_rate() -> None:
    before, after = ArmCounters(100.0, 1.0), ArmCounters(300.0, 11.0)
    assert interval_value("error_ratio", before, after, 20.0) == pytest.approx(0.05)
    assert interval_value("request_rate", before, after, 20.0) == pytest.approx(10.0)
    assert interval_value("request_rate", before, after, 0.0) is None


def test_interval_value_without_a_previous_series_counts_from_zero() -> None:
    assert interval_value("error_ratio", None, ArmCounters(50.0, 5.0), 10.0) == pytest.approx(0.1)


@pytest.mark.parametrize("metric", ["error_ratio", "latency_p50", "latency_p95", "latency_p99"])
def test_interval_value_without_traffic_is_none(metric: str) -> None:
    c = ArmCounters(10.0, 1.0, _fast(10.0))
    assert interval_value(metric, c, c, 60.0) is None


def test_interval_value_errors_are_capped_at_requests() -> None:
    assert interval_value("error_ratio", ArmCounters(0.0), ArmCounters(10.0, 12.0), 1.0) == 1.0


def test_interval_value_latency_differences_the_buckets() -> None:
    before = ArmCounters(100.0, 0.0, {0.1: 100.0, 1.0: 100.0, INF: 100.0})
    after = ArmCounters(200.0, 0.0, {0.1: 100.0, 1.0: 200.0, INF: 200.0})  # 100 slow ones since
    assert interval_value("latency_p50", before, after, 60.0) == pytest.approx(0.55)
    assert interval_value("latency_p95", before, after, 60.0) == pytest.approx(0.955)
    assert interval_value("latency_p99", before, after, 60.0) == pytest.approx(0.991)


def test_interval_value_after_a_counter_reset_counts_from_zero() -> None:
    before = ArmCounters(1000.0, 500.0, {0.1: 1000.0, 1.0: 1000.0, INF: 1000.0})
    after = ArmCounters(100.0, 10.0, {0.1: 0.0, 1.0: 100.0, INF: 100.0})
    assert interval_value("error_ratio", before, after, 60.0) == pytest.approx(0.1)
    assert interval_value("request_rate", before, after, 50.0) == pytest.approx(2.0)
    assert interval_value("latency_p50", before, after, 60.0) == pytest.approx(0.55)


def test_interval_value_error_counter_reset_alone_counts_from_zero() -> None:
    before = ArmCounters(100.0, 50.0)
    after = ArmCounters(200.0, 10.0)  # errors went down: the process restarted
    assert interval_value("error_ratio", before, after, 60.0) == pytest.approx(10.0 / 200.0)


def test_interval_value_latency_after_a_reset_seen_only_in_the_buckets() -> None:
    before = ArmCounters(100.0, 0.0, {0.1: 100.0, 1.0: 100.0, INF: 100.0})
    # restarted, then served 150 requests (more than before), all between 0.1 s and 1 s
    after = ArmCounters(150.0, 0.0, {0.1: 0.0, 1.0: 150.0, INF: 150.0})
    assert interval_value("latency_p50", before, after, 60.0) == pytest.approx(0.55)
