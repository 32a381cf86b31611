"""One metric check of a rollout's analysis, judged from everything measured so far.

The engine measures at every interval and appends to the history: a snapshot of the router's
cumulative counters for both versions (``Snapshot``), and for Prometheus checks the query's value
for the canary and, when comparing, for the stable version (``QueryResult``). ``evaluate`` is a
pure function of that history, so a restarted engine re-derives the same verdict from the stored
history instead of trusting an in-memory counter.

Two kinds of judging:

- statistical (``sequential``, ``mann_whitney``) on router ``error_ratio`` / ``latency_*``: the
  snapshots become canary-vs-baseline slices for the judges in this package;
- per-interval measurements (``threshold`` judge, request rate, every Prometheus query): each
  interval's value is compared with ``threshold.min/max`` and, with ``compare: baseline``, with the
  stable version's value times ``1 + max_increase``; more failed measurements than
  ``failure_limit`` fail the check. A window that ends with no measurement is inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from shipyard.analysis.registry import make_judge
from shipyard.analysis.samples import Evidence, Judge, Metric, Verdict
from shipyard.analysis.slices import ArmCounters, arm_delta, build_slices, was_reset

__all__ = [
    "CheckResult",
    "CheckSpec",
    "QueryResult",
    "Snapshot",
    "evaluate",
    "interval_value",
    "quantile_from_buckets",
]

ROUTER_METRICS = ("error_ratio", "latency_p50", "latency_p95", "latency_p99", "request_rate")
_QUANTILES = {"latency_p50": 0.50, "latency_p95": 0.95, "latency_p99": 0.99}


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    provider: str  # "router" | "prometheus"
    metric: str | None = None  # router metric
    query: str | None = None  # prometheus query template
    judge: str = "sequential"
    max: float | None = None
    min: float | None = None
    compare_baseline: bool = False
    max_increase: float | None = None
    # absolute error-ratio increase that is not harm (sequential error_ratio only; None: default)
    negligible_increase: float | None = None
    alpha: float = 0.02
    failure_limit: int = 0
    interval_s: float = 60.0
    dry_run: bool = False
    # measurement errors in a row before the rollout's on_error acts; None: the policy's limit
    consecutive_error_limit: int | None = None

    @property
    def statistical(self) -> bool:
        return (
            self.provider == "router"
            and self.judge in ("sequential", "mann_whitney")
            and self.metric != "request_rate"
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Cumulative router counters of both versions, ``at`` seconds after the analysis started."""

    at: float
    canary: ArmCounters
    baseline: ArmCounters | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    """One Prometheus measurement; ``None`` values are "no data" (``reason`` says why)."""

    at: float
    canary: float | None
    baseline: float | None = None
    query: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    verdict: Verdict  # PASS, FAIL, CONTINUE, INCONCLUSIVE or NO_DATA
    value: float | None  # the canary's value over the window (or the last measurement)
    baseline: float | None
    failures: int
    failure_limit: int
    measurements: int
    dry_run: bool
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        out["evidence"] = dict(self.evidence)
        return out


def quantile_from_buckets(buckets: Mapping[float, float], q: float) -> float | None:
    """``histogram_quantile`` over cumulative bucket counts: linear inside the bucket."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    low, below = 0.0, 0.0
    finite = [b for b in bounds if math.isfinite(b)]
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if not math.isfinite(le):
                return finite[-1] if finite else None
            inside = count - below
            return le if inside <= 0 else low + (le - low) * (rank - below) / inside
        low, below = le, count
    return finite[-1] if finite else None


def interval_value(
    metric: str, before: ArmCounters | None, after: ArmCounters, seconds: float
) -> float | None:
    """A router metric over one interval (two cumulative snapshots); None without traffic."""
    arm_before = before or ArmCounters(0.0)
    delta = arm_delta(arm_before, after, max_latencies=0)
    if metric == "request_rate":
        return delta.requests / seconds if seconds > 0 else None
    if delta.requests == 0:
        return None
    if metric == "error_ratio":
        return delta.errors / delta.requests
    base = {} if was_reset(arm_before, after) else arm_before.buckets
    buckets = {le: n - base.get(le, 0.0) for le, n in after.buckets.items()}
    return quantile_from_buckets(buckets, _QUANTILES[metric])


def _statistical_judge(check: CheckSpec) -> Judge:
    """The check's judge from the registry, told which one metric it judges and the harm."""
    metric = Metric.ERROR_RATE if check.metric == "error_ratio" else Metric.LATENCY
    options: dict[str, Any]
    if check.judge == "mann_whitney":
        options = {
            "confidence_level": 1.0 - check.alpha,
            "allowed_increase": 1.0 + (check.max_increase or 0.0),
            "metrics": (metric,),
            "critical": (metric,),
        }
        return make_judge(check.judge, options)
    options = {"alpha": check.alpha, "metrics": (metric,)}
    if check.negligible_increase is not None and metric is Metric.ERROR_RATE:
        options["negligible_error_increase"] = check.negligible_increase
    if check.max_increase is not None:
        if metric is Metric.ERROR_RATE:
            options["min_error_ratio"] = 1.0 + check.max_increase
            options["max_error_ratio"] = max(5.0, 2.0 * (1.0 + check.max_increase))
        else:  # P(canary slower) that counts as harm
            p = min(0.9, 0.5 + check.max_increase / 2)
            options["min_slower_probability"] = p
            options["max_slower_probability"] = max(0.95, (1 + p) / 2)
    return make_judge(check.judge, options)


def _window_values(
    check: CheckSpec, snaps: Sequence[Snapshot]
) -> tuple[float | None, float | None]:
    if len(snaps) < 2 or check.metric is None:
        return None, None
    first, last = snaps[0], snaps[-1]
    seconds = last.at - first.at
    canary = interval_value(check.metric, first.canary, last.canary, seconds)
    baseline = None
    if last.baseline is not None:
        baseline = interval_value(check.metric, first.baseline, last.baseline, seconds)
    return canary, baseline


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _pass_details(ev: Evidence) -> dict[str, Any]:
    """How a pass ruled harm out and, at a final look, the error rates' exact bounds."""
    out: dict[str, Any] = {}
    if ev.pass_criterion:
        out["pass_criterion"] = ev.pass_criterion
    d = ev.rate_difference
    if d is not None:
        out["error_ratio_bounds"] = {
            "canary": [d.canary_low, d.canary_high],
            "stable": [d.baseline_low, d.baseline_high],
            "increase_at_most": d.increase_high,
            "negligible_increase": d.tolerance,
        }
    return out


def _statistical(check: CheckSpec, snaps: Sequence[Snapshot], final: bool) -> CheckResult:
    value, base = _window_values(check, snaps)
    if len(snaps) < 2 or any(s.baseline is None for s in snaps):
        verdict = Verdict.INCONCLUSIVE if final else Verdict.NO_DATA
        if any(s.baseline is None for s in snaps):
            reason = "no stable version to compare with"
        else:
            reason = "not enough measurements yet" if snaps else "no measurement yet"
        return CheckResult(
            check.name, verdict, value, base, 0, check.failure_limit, 0, check.dry_run, reason
        )
    slices = build_slices(
        [s.at for s in snaps], [s.canary for s in snaps], [s.baseline for s in snaps]
    )
    judge = _statistical_judge(check)
    judgement = judge.judge(slices, final=final)
    verdict = judgement.verdict
    failures = 0
    if verdict is Verdict.FAIL:
        # failure_limit tolerates that many of the latest measurements at which the judge said FAIL
        failures, k = 1, len(slices) - 1
        while failures <= check.failure_limit and k >= 1:
            if judge.judge(slices[:k]).verdict is not Verdict.FAIL:
                break
            failures, k = failures + 1, k - 1
        if failures <= check.failure_limit:
            verdict = Verdict.INCONCLUSIVE if final else Verdict.CONTINUE
    evidence = judgement.evidence
    ev = evidence[0] if evidence else None
    reason = ev.reason if ev is not None else "no data"
    details: dict[str, Any] = {}
    if ev is not None:
        details = {
            "judge": ev.judge,
            "metric": ev.metric,
            ev.statistic_name: _finite(ev.statistic),
            "bound": _finite(ev.bound),
            ev.effect_name: _finite(ev.effect),
            "effect_interval": [_finite(ev.effect_low), _finite(ev.effect_high)],
            "canary_requests": ev.n_canary,
            "baseline_requests": ev.n_baseline,
            "alpha": ev.alpha,
        }
        details.update(_pass_details(ev))
    if verdict is Verdict.NO_DATA and final:
        verdict = Verdict.INCONCLUSIVE
    return CheckResult(
        check.name,
        verdict,
        value,
        base,
        failures,
        check.failure_limit,
        len(slices),
        check.dry_run,
        reason,
        details,
    )


def _out_of_bounds(check: CheckSpec, value: float, baseline: float | None) -> str | None:
    if check.max is not None and value > check.max:
        return f"{value:.4g} > max {check.max:g}"
    if check.min is not None and value < check.min:
        return f"{value:.4g} < min {check.min:g}"
    if check.compare_baseline and check.max_increase is not None and baseline:
        limit = baseline * (1.0 + check.max_increase)
        if value > limit:
            return f"{value:.4g} > stable {baseline:.4g} × {1 + check.max_increase:g}"
    return None


def _measured(
    check: CheckSpec, snaps: Sequence[Snapshot], queries: Sequence[QueryResult]
) -> list[tuple[float | None, float | None, str]]:
    """(canary, baseline, query or note) per measurement, oldest first."""
    if check.provider == "prometheus":
        return [
            (q.canary, q.baseline, q.reason if q.canary is None and q.reason else q.query)
            for q in queries
        ]
    out: list[tuple[float | None, float | None, str]] = []
    metric = check.metric or "error_ratio"
    for before, after in pairwise(snaps):
        seconds = after.at - before.at
        c = interval_value(metric, before.canary, after.canary, seconds)
        b = None
        if after.baseline is not None:
            b = interval_value(metric, before.baseline, after.baseline, seconds)
        out.append((c, b, f"router {metric}"))
    return out


def _per_interval(
    check: CheckSpec, snaps: Sequence[Snapshot], queries: Sequence[QueryResult], final: bool
) -> CheckResult:
    rows = _measured(check, snaps, queries)
    failed: list[str] = []
    values: list[float] = []
    last_base: float | None = None
    for canary, baseline, _ in rows:
        if canary is None:
            continue
        values.append(canary)
        last_base = baseline
        why = _out_of_bounds(check, canary, baseline)
        if why is not None:
            failed.append(why)
    limit = check.failure_limit
    if len(failed) > limit:
        verdict = Verdict.FAIL
        reason = f"{len(failed)} of {len(values)} measurements failed (limit {limit}): {failed[-1]}"
    elif not values:
        verdict = Verdict.INCONCLUSIVE if final else Verdict.CONTINUE
        notes = [note for c, _, note in rows if c is None and note]
        reason = "no data" + (f" ({notes[-1]})" if notes else "")
    else:
        verdict = Verdict.PASS if final else Verdict.CONTINUE
        reason = f"{len(failed)} of {len(values)} measurements failed (limit {limit})"
    if check.provider == "prometheus":
        query = next((q.query for q in reversed(queries) if q.query), "")
    else:
        query = f"router {check.metric or 'error_ratio'}"
    evidence = {
        "query": query,
        "values": [round(v, 6) for v in values[-20:]],
        "failed": failed[-5:],
        "max": check.max,
        "min": check.min,
        "max_increase": check.max_increase if check.compare_baseline else None,
    }
    return CheckResult(
        check.name,
        verdict,
        values[-1] if values else None,
        last_base,
        len(failed),
        limit,
        len(values),
        check.dry_run,
        reason,
        evidence,
    )


def evaluate(
    check: CheckSpec,
    snapshots: Sequence[Snapshot],
    queries: Sequence[QueryResult] = (),
    *,
    final: bool = False,
) -> CheckResult:
    """The check's verdict on the history so far; ``final`` when the analysis window closed."""
    if check.statistical:
        return _statistical(check, snapshots, final)
    return _per_interval(check, snapshots, queries, final)
