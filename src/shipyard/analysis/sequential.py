"""The default judge: anytime-valid sequential tests of canary against baseline.

Both metrics reduce to the same question about Bernoulli trials whose null probability is known
slice by slice:

* errors: given the errors seen in a slice, each one came from the canary with probability
  ``n_c·λ_c / (n_c·λ_c + n_b·λ_b)``; with ``r = λ_c/λ_b`` its log-odds are ``log r + log(n_c/n_b)``.
  Conditioning on the slice removes whatever the two arms share (load, time of day, a flaky
  dependency), which is why drift does not fool it.
* latency: each canary request is paired with the baseline request at the same rank of arrival in
  the same slice; "the canary one was slower" has log-odds ``η`` and ``η = 0`` when both arms have
  the same latency distribution.

So every trial has log-odds ``ℓ_t + η`` with a known offset ``ℓ_t`` and the harm parameter ``η``.
For a fixed ``η₁ > 0`` the likelihood ratio against ``η = 0`` is a non-negative supermartingale
under every ``η ≤ 0`` (the log-partition function is convex, so its increments grow with ``η``);
for the error test, the exact conditional law of the canary's share of errors is hypergeometric,
which is smaller in the convex order than the binomial used here (Hoeffding, 1963), so the
bound still holds. A mixture over a grid of ``η₁ ≥ η_min`` is again a supermartingale, and by
Ville's inequality it ever reaches ``1/α`` with probability at most ``α``: a mixture SPRT in the
sense of Robbins (1970) and Lindon et al. (KDD 2022), valid however often it is looked at.
Inverting the same mixtures around every ``η₀`` gives a confidence sequence for the effect.

A ratio cannot be bounded when neither arm errs, so a pass may also rest on the absolute error
rates: at the final look, exact one-sided bounds of both arms (``error_rate_bounds``) showing the
canary's error rate at most ``negligible_error_increase`` above the baseline's. That criterion
only ever turns INCONCLUSIVE into PASS; FAIL is decided by the e-values alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from shipyard.analysis.samples import (
    Direction,
    Evidence,
    Judgement,
    Metric,
    RateDifference,
    Slice,
    Verdict,
    combine_verdicts,
)
from shipyard.errors import InvalidError

__all__ = [
    "SequentialConfig",
    "SequentialJudge",
    "error_rate_bounds",
    "error_trials",
    "harm_grid",
    "latency_trials",
    "mixture_log_evalue",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SequentialConfig:
    """Defaults are the configuration benchmarked in docs/canary-analysis.md.

    ``alpha`` bounds the probability of rolling back a canary that is no worse than its
    baseline, over the whole analysis and however often it is judged. When both metrics are
    judged, latency gets ``latency_alpha_share`` of it: its sign test has far more trials than
    there are errors, so it loses little by testing at a stricter level, and errors gain power.
    Each metric's share is split evenly across sides for ``Direction.EITHER``.

    ``negligible_error_increase`` is an absolute tolerance (0.001 = 0.1 percentage points): an
    error rate at most that far above the baseline's is not harm, so a final look may pass a
    canary whose ratio cannot be bounded (no errors in either arm). 0 turns it off.
    """

    alpha: float = 0.02
    latency_alpha_share: float = 0.25
    min_error_ratio: float = 1.25
    max_error_ratio: float = 5.0
    min_slower_probability: float = 0.55
    max_slower_probability: float = 0.95
    grid_size: int = 16
    metrics: tuple[Metric, ...] = (Metric.ERROR_RATE, Metric.LATENCY)
    error_direction: Direction = Direction.INCREASE
    latency_direction: Direction = Direction.INCREASE
    negligible_error_increase: float = 0.001

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise InvalidError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 1.0 < self.min_error_ratio < self.max_error_ratio:
            raise InvalidError("need 1 < min_error_ratio < max_error_ratio")
        if not 0.5 < self.min_slower_probability < self.max_slower_probability < 1.0:
            raise InvalidError("need 0.5 < min_slower_probability < max_slower_probability < 1")
        if not 0.0 < self.latency_alpha_share < 1.0:
            raise InvalidError("latency_alpha_share must be in (0, 1)")
        if self.grid_size < 1:
            raise InvalidError("grid_size must be at least 1")
        if not self.metrics:
            raise InvalidError("judge at least one metric")
        if not 0.0 <= self.negligible_error_increase < 1.0:
            raise InvalidError(
                f"negligible_error_increase must be in [0, 1), got {self.negligible_error_increase}"
            )

    def sides(self, metric: Metric) -> tuple[int, ...]:
        direction = self.error_direction if metric is Metric.ERROR_RATE else self.latency_direction
        return {Direction.INCREASE: (1,), Direction.DECREASE: (-1,), Direction.EITHER: (1, -1)}[
            direction
        ]

    def alpha_per_test(self, metric: Metric) -> float:
        share = 1.0
        if len(set(self.metrics)) > 1:
            lat = self.latency_alpha_share
            share = lat if metric is Metric.LATENCY else 1.0 - lat
        return self.alpha * share / len(self.sides(metric))

    def effect_range(self, metric: Metric) -> tuple[float, float]:
        """Smallest and largest harm worth betting on, as log-odds shifts."""
        if metric is Metric.ERROR_RATE:
            return math.log(self.min_error_ratio), math.log(self.max_error_ratio)
        lo, hi = self.min_slower_probability, self.max_slower_probability
        return math.log(lo / (1 - lo)), math.log(hi / (1 - hi))


def harm_grid(low: float, high: float, size: int) -> FloatArray:
    """Alternatives spread evenly in log-odds; the uniform mixture over them costs ~log(size)."""
    if size == 1:
        return np.array([low], dtype=np.float64)
    return np.linspace(low, high, size, dtype=np.float64)


def mixture_log_evalue(
    successes: NDArray[np.floating] | NDArray[np.integer],
    trials: NDArray[np.floating] | NDArray[np.integer],
    offset: FloatArray,
    shifts: FloatArray,
) -> FloatArray:
    """Log of the uniform-mixture likelihood ratio after each slice (last axis is time).

    Works on any leading batch shape so the benchmark runs thousands of streams through the
    exact arithmetic the judge uses. Slices with ``trials == 0`` contribute nothing.
    """
    s = np.asarray(successes, dtype=np.float64)[..., None]
    m = np.asarray(trials, dtype=np.float64)[..., None]
    off = np.asarray(offset, dtype=np.float64)[..., None]
    log_norm = np.logaddexp(0.0, off + shifts) - np.logaddexp(0.0, off)
    increments = s * shifts - m * log_norm
    cumulative = np.cumsum(increments, axis=-2)
    peak = cumulative.max(axis=-1, keepdims=True)
    mixed = peak[..., 0] + np.log(np.mean(np.exp(cumulative - peak), axis=-1))
    return np.asarray(mixed, dtype=np.float64)


def error_trials(
    canary_errors: NDArray[np.integer] | NDArray[np.floating],
    canary_requests: NDArray[np.integer] | NDArray[np.floating],
    baseline_errors: NDArray[np.integer] | NDArray[np.floating],
    baseline_requests: NDArray[np.integer] | NDArray[np.floating],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(canary errors, all errors, log(n_c/n_b)) per slice; one-armed slices carry no evidence."""
    nc = np.asarray(canary_requests, dtype=np.float64)
    nb = np.asarray(baseline_requests, dtype=np.float64)
    both = (nc > 0) & (nb > 0)
    ec = np.where(both, np.asarray(canary_errors, dtype=np.float64), 0.0)
    total = np.where(both, ec + np.asarray(baseline_errors, dtype=np.float64), 0.0)
    offset = np.where(both, np.log(np.where(both, nc, 1.0) / np.where(both, nb, 1.0)), 0.0)
    return ec, total, offset


def error_rate_bounds(errors: int, requests: int, level: float) -> tuple[float, float]:
    """Exact (Clopper-Pearson) one-sided lower and upper bounds of an error rate.

    Each bound alone is wrong with probability at most ``level``. Pooling slices whose error
    rates differ gives a Poisson-binomial count, which is less spread than the binomial in its
    tails (Hoeffding, 1956), so the bounds stay conservative under drift.
    """
    if requests <= 0:
        return 0.0, 1.0
    low = 0.0 if errors == 0 else float(stats.beta.ppf(level, errors, requests - errors + 1))
    high = (
        1.0
        if errors >= requests
        else float(stats.beta.ppf(1.0 - level, errors + 1, requests - errors))
    )
    return low, high


def latency_trials(slices: Sequence[Slice]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(canary slower, decided pairs, 0) per slice, pairing requests by order of arrival."""
    wins = np.zeros(len(slices))
    pairs = np.zeros(len(slices))
    for i, sl in enumerate(slices):
        k = min(len(sl.canary.latencies), len(sl.baseline.latencies))
        if k == 0:
            continue
        c = np.asarray(sl.canary.latencies[:k])
        b = np.asarray(sl.baseline.latencies[:k])
        wins[i] = np.count_nonzero(c > b)
        pairs[i] = wins[i] + np.count_nonzero(c < b)
    return wins, pairs, np.zeros(len(slices))


def _log_evalue_around(
    successes: FloatArray,
    trials: FloatArray,
    offset: FloatArray,
    centres: FloatArray,
    shifts: FloatArray,
) -> FloatArray:
    """Final log e-value of ``η = centre`` against alternatives ``centre + shift``, per centre."""
    s = successes.sum()
    base = offset[None, :, None] + centres[:, None, None]
    log_norm = np.logaddexp(0.0, base + shifts) - np.logaddexp(0.0, base)
    total = s * shifts - (trials[None, :, None] * log_norm).sum(axis=1)
    peak = total.max(axis=-1, keepdims=True)
    return np.asarray(peak[:, 0] + np.log(np.mean(np.exp(total - peak), axis=-1)), dtype=np.float64)


def confidence_sequence(
    successes: FloatArray, trials: FloatArray, offset: FloatArray, alpha: float, span: float
) -> tuple[float, float]:
    """Log-odds effects not yet rejected by two-sided mixtures at level ``alpha``.

    The set is valid at every time simultaneously, so it can be shown on a live dashboard.
    """
    centres = np.linspace(-6.0, 6.0, 1201)
    mags = harm_grid(0.02, span, 24)
    shifts = np.concatenate([mags, -mags])
    log_e = _log_evalue_around(successes, trials, offset, centres, shifts)
    kept = centres[log_e < math.log(1.0 / alpha)]
    if kept.size == 0:
        return math.nan, math.nan
    return float(kept.min()), float(kept.max())


class SequentialJudge:
    """Mixture-SPRT judge; FAIL the moment harm is proven, PASS at the end only if ruled out."""

    name = "sequential"

    def __init__(self, config: SequentialConfig | None = None) -> None:
        self.config = config or SequentialConfig()

    def judge(self, slices: Sequence[Slice], *, final: bool = False) -> Judgement:
        evidence = tuple(
            self._judge_metric(metric, slices, final) for metric in self.config.metrics
        )
        return Judgement(combine_verdicts(e.verdict for e in evidence), evidence)

    def _judge_metric(self, metric: Metric, slices: Sequence[Slice], final: bool) -> Evidence:
        cfg = self.config
        n_c = sum(s.canary.requests for s in slices)
        n_b = sum(s.baseline.requests for s in slices)
        if metric is Metric.ERROR_RATE:
            succ, trials, offset = error_trials(
                np.array([s.canary.errors for s in slices]),
                np.array([s.canary.requests for s in slices]),
                np.array([s.baseline.errors for s in slices]),
                np.array([s.baseline.requests for s in slices]),
            )
        else:
            succ, trials, offset = latency_trials(slices)
            n_c = sum(len(s.canary.latencies) for s in slices)
            n_b = sum(len(s.baseline.latencies) for s in slices)
        alpha = cfg.alpha_per_test(metric)
        low, high = cfg.effect_range(metric)
        shifts = harm_grid(low, high, cfg.grid_size)
        if n_c == 0 or n_b == 0:
            return self._evidence(
                metric,
                Verdict.NO_DATA,
                0.0,
                alpha,
                (math.nan,) * 3,
                n_c,
                n_b,
                "no comparable observations yet",
            )
        best_log_e = -math.inf
        for side in cfg.sides(metric):
            log_e = mixture_log_evalue(succ, trials, offset, side * shifts)
            best_log_e = max(best_log_e, float(log_e.max()))
        lo_eta, hi_eta = confidence_sequence(succ, trials, offset, alpha, high)
        effect = self._point_effect(metric, succ, trials, offset)
        to_effect = _to_ratio if metric is Metric.ERROR_RATE else _to_probability
        interval = (to_effect(effect), to_effect(lo_eta), to_effect(hi_eta))
        threshold = math.log(1.0 / alpha)
        difference = None
        if final and metric is Metric.ERROR_RATE and cfg.negligible_error_increase > 0:
            difference = self._rate_difference(slices, alpha)
        criterion = ""
        if best_log_e >= threshold:
            verdict, why = Verdict.FAIL, "canary is worse than baseline (e-value crossed 1/alpha)"
        elif not final:
            verdict, why = Verdict.CONTINUE, "not enough evidence of harm yet"
        else:
            criterion = self._harm_ruled_out(metric, lo_eta, hi_eta, low, difference)
            verdict, why = self._final_verdict(criterion, difference)
        return self._evidence(
            metric, verdict, best_log_e, alpha, interval, n_c, n_b, why, criterion, difference
        )

    def _rate_difference(self, slices: Sequence[Slice], alpha: float) -> RateDifference:
        """Both arms' exact error-rate bounds over the slices where both served traffic.

        Only slices with both arms count, as in the e-values, so both rates cover the same time.
        """
        both = [s for s in slices if s.canary.requests > 0 and s.baseline.requests > 0]
        level = alpha / 2.0
        c_low, c_high = error_rate_bounds(
            sum(s.canary.errors for s in both), sum(s.canary.requests for s in both), level
        )
        b_low, b_high = error_rate_bounds(
            sum(s.baseline.errors for s in both), sum(s.baseline.requests for s in both), level
        )
        return RateDifference(
            c_low, c_high, b_low, b_high, self.config.negligible_error_increase, alpha
        )

    def _harm_ruled_out(
        self,
        metric: Metric,
        lo_eta: float,
        hi_eta: float,
        low: float,
        difference: RateDifference | None,
    ) -> str:
        """Which criterion rules harm out on every tested side: "ratio", "negligible_increase"
        (the absolute bound was needed on at least one side) or "" (neither)."""
        used_tolerance = False
        for side in self.config.sides(metric):
            by_ratio = not math.isnan(lo_eta) and (hi_eta < low if side > 0 else lo_eta > -low)
            if by_ratio:
                continue
            if difference is None:
                return ""
            worst = difference.increase_high if side > 0 else difference.decrease_high
            if worst >= difference.tolerance:
                return ""
            used_tolerance = True
        return "negligible_increase" if used_tolerance else "ratio"

    def _final_verdict(
        self, criterion: str, difference: RateDifference | None
    ) -> tuple[Verdict, str]:
        if criterion == "ratio":
            return Verdict.PASS, "any harm is smaller than the minimum effect"
        if criterion and difference is not None:
            return Verdict.PASS, _negligible_reason(difference, self.config.error_direction)
        return Verdict.INCONCLUSIVE, "window ended before harm was proven or ruled out"

    @staticmethod
    def _point_effect(
        metric: Metric, succ: FloatArray, trials: FloatArray, offset: FloatArray
    ) -> float:
        """Mantel-Haenszel log rate ratio for errors, pooled log-odds of "slower" for latency."""
        p0 = 1.0 / (1.0 + np.exp(-offset))
        num = float((succ * (1.0 - p0)).sum())
        den = float(((trials - succ) * p0).sum())
        if num == 0.0 or den == 0.0:
            return math.inf if num > 0 else (-math.inf if den > 0 else 0.0)
        return math.log(num / den)

    def _evidence(
        self,
        metric: Metric,
        verdict: Verdict,
        log_e: float,
        alpha: float,
        effect: tuple[float, float, float],
        n_c: int,
        n_b: int,
        reason: str,
        criterion: str = "",
        difference: RateDifference | None = None,
    ) -> Evidence:
        return Evidence(
            judge=self.name,
            metric=metric.value,
            verdict=verdict,
            statistic=math.exp(min(log_e, 700.0)),
            statistic_name="max e-value",
            bound=1.0 / alpha,
            effect=effect[0],
            effect_name="error-rate ratio" if metric is Metric.ERROR_RATE else "P(canary slower)",
            effect_low=effect[1],
            effect_high=effect[2],
            n_canary=n_c,
            n_baseline=n_b,
            alpha=alpha,
            reason=reason,
            pass_criterion=criterion,
            rate_difference=difference,
        )


def _negligible_reason(difference: RateDifference, direction: Direction) -> str:
    """The pass by tolerance in words, with the bound that earned it, in percentage points."""
    confidence = f"{100.0 * (1.0 - difference.alpha):g}%"
    tolerance = f"{100.0 * difference.tolerance:g}"
    if direction is Direction.EITHER:
        gap = max(difference.increase_high, difference.decrease_high)
        said = f"within {100.0 * gap:.2f} points of stable"
    elif direction is Direction.DECREASE:
        said = f"at most {100.0 * difference.decrease_high:+.2f} points below stable"
    else:
        said = f"at most {100.0 * difference.increase_high:+.2f} points above stable"
    return f"error ratio {said} ({confidence} bound), below the negligible {tolerance} points"


def _to_ratio(eta: float) -> float:
    return (
        math.exp(eta)
        if math.isfinite(eta)
        else (math.inf if eta > 0 else 0.0 if eta < 0 else math.nan)
    )


def _to_probability(eta: float) -> float:
    if math.isnan(eta):
        return math.nan
    return 1.0 / (1.0 + math.exp(-eta)) if abs(eta) < 700 else (1.0 if eta > 0 else 0.0)
