"""Kayenta-style fixed-window judge: Mann-Whitney rank-sum interval on each metric's series.

Each slice contributes one point per arm (its error rate, its mean latency), as a metrics backend
returns a time series. A metric is "worse" when the whole confidence interval of the
Hodges-Lehmann shift lies on the bad side and the mean ratio exceeds the allowed effect; a
worse critical metric fails the canary, otherwise the share of good metrics is scored against
the pass and marginal thresholds. It is valid for one look at a fixed window only: judging it
again and again (as rollouts do) inflates false alarms, which the benchmark shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from shipyard.analysis.samples import Direction, Evidence, Judgement, Metric, Slice, Verdict
from shipyard.errors import InvalidError

__all__ = [
    "MannWhitneyConfig",
    "MannWhitneyJudge",
    "RankSumInterval",
    "rank_sum_interval",
    "slice_series",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RankSumInterval:
    estimate: float
    low: float
    high: float
    exact: bool


@dataclass(frozen=True, slots=True)
class MannWhitneyConfig:
    """Kayenta's knobs: confidence level, allowed effect (mean ratio), direction, criticality."""

    confidence_level: float = 0.95
    allowed_increase: float = 1.0
    allowed_decrease: float = 1.0
    metrics: tuple[Metric, ...] = (Metric.ERROR_RATE, Metric.LATENCY)
    directions: tuple[tuple[Metric, Direction], ...] = (
        (Metric.ERROR_RATE, Direction.INCREASE),
        (Metric.LATENCY, Direction.INCREASE),
    )
    critical: tuple[Metric, ...] = (Metric.ERROR_RATE, Metric.LATENCY)
    pass_score: float = 95.0
    marginal_score: float = 75.0

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence_level < 1.0:
            raise InvalidError("confidence_level must be in (0, 1)")
        if self.allowed_increase < 1.0 or not 0.0 < self.allowed_decrease <= 1.0:
            raise InvalidError("allowed_increase must be >= 1 and allowed_decrease in (0, 1]")
        if not 0.0 <= self.marginal_score <= self.pass_score <= 100.0:
            raise InvalidError("need 0 <= marginal_score <= pass_score <= 100")
        if not self.metrics:
            raise InvalidError("judge at least one metric")

    def direction(self, metric: Metric) -> Direction:
        return dict(self.directions).get(metric, Direction.INCREASE)


@lru_cache(maxsize=256)
def _rank_sum_cdf(m: int, n: int) -> tuple[float, ...]:
    """Exact null CDF of the Mann-Whitney U statistic (no ties), by the usual recursion."""
    # counts[i][j] holds the frequency table for samples of sizes i and j; built row by row.
    table: dict[tuple[int, int], NDArray[np.float64]] = {}
    for i in range(m + 1):
        for j in range(n + 1):
            if i == 0 or j == 0:
                table[i, j] = np.ones(1)
                continue
            a = table[i - 1, j]  # the largest value is an x: it beats all j y's
            b = table[i, j - 1]
            freq = np.zeros(i * j + 1)
            freq[j : j + a.size] += a
            freq[: b.size] += b
            table[i, j] = freq
    freq = table[m, n]
    return tuple(np.cumsum(freq) / freq.sum())


def _exact_quantile(p: float, m: int, n: int) -> int:
    """Smallest u with P(U <= u) >= p."""
    cdf = np.asarray(_rank_sum_cdf(m, n))
    return int(np.searchsorted(cdf, p - 1e-12))


def rank_sum_interval(
    x: FloatArray, y: FloatArray, confidence: float = 0.95, *, exact: bool | None = None
) -> RankSumInterval:
    """Hodges-Lehmann shift of x over y and its rank-sum confidence interval.

    Exact (inverting the exact U distribution) for small samples without ties, as R's
    ``wilcox.test(conf.int=TRUE)`` does; otherwise the normal approximation to the same order
    statistics of the pairwise differences.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    m, n = xs.size, ys.size
    if m == 0 or n == 0:
        raise InvalidError("rank-sum interval needs observations in both samples")
    diffs = np.sort((xs[:, None] - ys[None, :]).ravel())
    estimate = float(np.median(diffs))
    alpha = 1.0 - confidence
    if exact is None:
        exact = m < 50 and n < 50 and np.unique(np.concatenate([xs, ys])).size == m + n
    if exact:
        k = max(_exact_quantile(alpha / 2.0, m, n), 1)
    else:
        z = float(stats.norm.ppf(1.0 - alpha / 2.0))
        k = max(math.floor(m * n / 2.0 - z * math.sqrt(m * n * (m + n + 1) / 12.0)), 1)
    k = min(k, m * n)
    return RankSumInterval(estimate, float(diffs[k - 1]), float(diffs[m * n - k]), exact)


def slice_series(slices: Sequence[Slice], metric: Metric, arm: str) -> FloatArray:
    """One point per slice, as a metrics backend would return it; empty slices are skipped."""
    values: list[float] = []
    for sl in slices:
        a = sl.canary if arm == "canary" else sl.baseline
        if metric is Metric.ERROR_RATE and a.requests > 0:
            values.append(a.errors / a.requests)
        elif metric is Metric.LATENCY and a.latencies:
            values.append(float(np.mean(a.latencies)))
    return np.asarray(values, dtype=np.float64)


class MannWhitneyJudge:
    name = "mann_whitney"

    def __init__(self, config: MannWhitneyConfig | None = None) -> None:
        self.config = config or MannWhitneyConfig()

    def judge(self, slices: Sequence[Slice], *, final: bool = False) -> Judgement:
        evidence = tuple(self._classify(metric, slices) for metric in self.config.metrics)
        judged = [e for e in evidence if e.verdict is not Verdict.NO_DATA]
        if not judged:
            return Judgement(Verdict.NO_DATA, evidence)
        worse = [e for e in judged if e.verdict is Verdict.FAIL]
        if any(Metric(e.metric) in self.config.critical for e in worse):
            return Judgement(Verdict.FAIL, evidence)
        score = 100.0 * (len(judged) - len(worse)) / len(judged)
        if score < self.config.marginal_score:
            return Judgement(Verdict.FAIL, evidence)
        if not final:
            return Judgement(Verdict.CONTINUE, evidence)
        verdict = Verdict.PASS if score >= self.config.pass_score else Verdict.INCONCLUSIVE
        return Judgement(verdict, evidence)

    def _classify(self, metric: Metric, slices: Sequence[Slice]) -> Evidence:
        cfg = self.config
        x = slice_series(slices, metric, "canary")
        y = slice_series(slices, metric, "baseline")
        alpha = 1.0 - cfg.confidence_level
        if x.size == 0 or y.size == 0:
            return self._evidence(metric, Verdict.NO_DATA, None, math.nan, x, y, alpha, "no data")
        if np.unique(np.concatenate([x, y])).size == 1:
            return self._evidence(metric, Verdict.PASS, None, 1.0, x, y, alpha, "all values equal")
        ci = rank_sum_interval(x, y, cfg.confidence_level)
        ratio = _mean_ratio(x, y)
        direction = cfg.direction(metric)
        high = ci.low > 0 and ratio >= cfg.allowed_increase
        low = ci.high < 0 and ratio <= cfg.allowed_decrease
        if high and direction in (Direction.INCREASE, Direction.EITHER):
            verdict, why = Verdict.FAIL, "canary higher than baseline"
        elif low and direction in (Direction.DECREASE, Direction.EITHER):
            verdict, why = Verdict.FAIL, "canary lower than baseline"
        else:
            verdict, why = Verdict.PASS, "no significant shift in the bad direction"
        return self._evidence(metric, verdict, ci, ratio, x, y, alpha, why)

    def _evidence(
        self,
        metric: Metric,
        verdict: Verdict,
        ci: RankSumInterval | None,
        ratio: float,
        x: FloatArray,
        y: FloatArray,
        alpha: float,
        reason: str,
    ) -> Evidence:
        return Evidence(
            judge=self.name,
            metric=metric.value,
            verdict=verdict,
            statistic=ci.estimate if ci else math.nan,
            statistic_name="Hodges-Lehmann shift",
            bound=ci.low if ci else math.nan,
            effect=ratio,
            effect_name="mean ratio canary/baseline",
            effect_low=ci.low if ci else math.nan,
            effect_high=ci.high if ci else math.nan,
            n_canary=int(x.size),
            n_baseline=int(y.size),
            alpha=alpha,
            reason=reason,
        )


def _mean_ratio(x: FloatArray, y: FloatArray) -> float:
    mx, my = float(np.mean(x)), float(np.mean(y))
    if my == 0.0:
        return math.inf if mx > 0 else 1.0
    return mx / my
