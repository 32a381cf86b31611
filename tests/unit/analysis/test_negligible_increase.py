"""The sequential judge's absolute tolerance: a healthy zero-error canary passes, harm never does."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from shipyard.analysis import (
    ArmSlice,
    Direction,
    Metric,
    SequentialConfig,
    SequentialJudge,
    Slice,
    Verdict,
)
from shipyard.analysis.sequential import error_rate_bounds
from shipyard.errors import InvalidError

ERRORS = (Metric.ERROR_RATE,)


def _judge(tolerance: float, **kw: object) -> SequentialJudge:
    return SequentialJudge(
        SequentialConfig(metrics=ERRORS, negligible_error_increase=tolerance, **kw)  # type: ignore[arg-type]
    )


def _window(canary: tuple[int, int], baseline: tuple[int, int], slices: int = 5) -> list[Slice]:
    """``slices`` equal slices adding up to (errors, requests) per arm."""

    def part(total: tuple[int, int], i: int) -> ArmSlice:
        errors, requests = total
        n = requests // slices + (i < requests % slices)
        e = errors // slices + (i < errors % slices)
        return ArmSlice(n, min(e, n))

    return [Slice(2.0 * i, 2.0, part(canary, i), part(baseline, i)) for i in range(slices)]


def test_zero_errors_with_enough_requests_pass_by_the_tolerance() -> None:
    judgement = _judge(0.001).judge(_window((0, 5000), (0, 20000)), final=True)
    ev = judgement.evidence[0]
    assert judgement.verdict is Verdict.PASS
    assert ev.pass_criterion == "negligible_increase"
    assert ev.rate_difference is not None
    assert ev.rate_difference.increase_high < 0.001
    assert "below the negligible 0.1 points" in ev.reason
    assert ev.reason.startswith("error ratio at most +0.09 points above stable (98% bound)")


def test_without_the_tolerance_zero_errors_stay_inconclusive() -> None:
    judgement = _judge(0.0).judge(_window((0, 5000), (0, 20000)), final=True)
    assert judgement.verdict is Verdict.INCONCLUSIVE
    assert judgement.evidence[0].rate_difference is None
    assert judgement.evidence[0].pass_criterion == ""


def test_too_few_requests_stay_inconclusive() -> None:
    # 0 of 4,000 allows an error rate up to 1 - 0.01^(1/4000) = 0.115% at 99%
    judgement = _judge(0.001).judge(_window((0, 4000), (0, 16000)), final=True)
    ev = judgement.evidence[0]
    assert judgement.verdict is Verdict.INCONCLUSIVE
    assert ev.rate_difference is not None
    assert ev.rate_difference.canary_high == pytest.approx(1 - 0.01 ** (1 / 4000))


def test_the_tolerance_only_decides_at_the_final_look() -> None:
    judgement = _judge(0.001).judge(_window((0, 50000), (0, 50000)), final=False)
    assert judgement.verdict is Verdict.CONTINUE
    assert judgement.evidence[0].rate_difference is None


@pytest.mark.parametrize("seed", range(20))
def test_a_real_increase_never_passes_by_the_tolerance(seed: int) -> None:
    """Stable 0.1%, canary 2%: 1.9 points, far above a 1-point tolerance, however few requests."""
    rng = np.random.default_rng(seed)
    n_c = int(rng.integers(50, 400))
    n_b = 4 * n_c
    window = _window((int(rng.binomial(n_c, 0.02)), n_c), (int(rng.binomial(n_b, 0.001)), n_b))
    verdict = _judge(0.01).judge(window, final=True).verdict
    assert verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE)


def test_big_harm_fails_the_same_with_and_without_the_tolerance() -> None:
    window = _window((60, 300), (12, 1200))
    with_tolerance = _judge(0.05).judge(window, final=True)
    without = _judge(0.0).judge(window, final=True)
    assert with_tolerance.verdict is without.verdict is Verdict.FAIL
    a, b = with_tolerance.evidence[0], without.evidence[0]
    assert (a.statistic, a.effect, a.effect_low, a.effect_high, a.reason) == (
        b.statistic,
        b.effect,
        b.effect_low,
        b.effect_high,
        b.reason,
    )
    assert a.pass_criterion == ""


def test_a_pass_by_ratio_says_so() -> None:
    judgement = _judge(0.001).judge(_window((100, 20000), (400, 20000)), final=True)
    assert judgement.verdict is Verdict.PASS
    assert judgement.evidence[0].pass_criterion == "ratio"
    assert judgement.evidence[0].reason == "any harm is smaller than the minimum effect"


def test_evidence_holds_both_arms_exact_bounds() -> None:
    ev = _judge(0.01, alpha=0.02).judge(_window((3, 1000), (10, 4000)), final=True).evidence[0]
    d = ev.rate_difference
    assert d is not None
    assert (d.tolerance, d.alpha) == (0.01, 0.02)
    assert d.canary_high == pytest.approx(stats.beta.ppf(0.99, 4, 997))
    assert d.baseline_low == pytest.approx(stats.beta.ppf(0.01, 10, 3991))
    assert d.increase_high == pytest.approx(d.canary_high - d.baseline_low)
    assert d.decrease_high == pytest.approx(d.baseline_high - d.canary_low)
    assert ev.verdict is Verdict.PASS and ev.pass_criterion == "negligible_increase"


def test_either_direction_needs_both_sides_ruled_out() -> None:
    judge = _judge(0.001, error_direction=Direction.EITHER)
    judgement = judge.judge(_window((0, 10000), (0, 40000)), final=True)
    assert judgement.verdict is Verdict.PASS
    assert judgement.evidence[0].reason.startswith("error ratio within 0.05 points of stable")


def test_one_armed_slices_do_not_count_in_the_bounds() -> None:
    window = [
        *_window((0, 5000), (0, 20000)),
        Slice(10.0, 2.0, ArmSlice(0), ArmSlice(500, 400)),
    ]
    d = _judge(0.001).judge(window, final=True).evidence[0].rate_difference
    assert d is not None and d.baseline_high < 0.001


def test_exact_bounds_cover_at_their_level() -> None:
    rng = np.random.default_rng(7)
    p, n, level = 0.003, 800, 0.05
    draws = rng.binomial(n, p, 4000)
    highs = np.array([error_rate_bounds(int(x), n, level)[1] for x in draws])
    lows = np.array([error_rate_bounds(int(x), n, level)[0] for x in draws])
    assert (highs < p).mean() <= level
    assert (lows > p).mean() <= level
    assert error_rate_bounds(0, 0, level) == (0.0, 1.0)
    assert error_rate_bounds(5, 5, level)[1] == 1.0


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0, math.nan])
def test_the_tolerance_must_be_in_zero_one(bad: float) -> None:
    with pytest.raises(InvalidError, match="negligible_error_increase"):
        SequentialConfig(negligible_error_increase=bad)


arms = st.tuples(st.integers(0, 3000), st.integers(0, 3000)).map(
    lambda t: (min(t), max(t)) if max(t) > 0 else (0, 1)
)


@settings(max_examples=150, deadline=None)
@given(
    canary=arms,
    baseline=arms,
    slices=st.integers(1, 6),
    tolerance=st.floats(0.0, 0.9),
    final=st.booleans(),
)
def test_a_tolerance_never_changes_fail_or_continue(
    canary: tuple[int, int],
    baseline: tuple[int, int],
    slices: int,
    tolerance: float,
    final: bool,
) -> None:
    window = _window(canary, baseline, slices)
    without = _judge(0.0).judge(window, final=final).verdict
    with_tolerance = _judge(tolerance).judge(window, final=final).verdict
    if without in (Verdict.FAIL, Verdict.CONTINUE, Verdict.PASS, Verdict.NO_DATA):
        assert with_tolerance is without
    else:
        assert with_tolerance in (Verdict.INCONCLUSIVE, Verdict.PASS)
