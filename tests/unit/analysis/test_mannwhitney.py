"""Hodges-Lehmann and rank-sum interval against hand-worked vectors and brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from shipyard.analysis import ArmSlice, MannWhitneyJudge, Slice, Verdict, rank_sum_interval
from shipyard.analysis.mannwhitney import _rank_sum_cdf


def test_hand_worked_exact_interval() -> None:
    # x - y differences sorted (20 of them): -6 -5 -5 -4 -4 -3 -3 -2 -2 -1.5 -1 -0.5 0.5 0.5 1.5
    # 1.5 2.5 2.5 3.5 4.5. HL = mean of the 10th and 11th = -1.25. For m=5, n=4 the U counts for
    # u = 0..3 are 1, 1, 2, 3 out of C(9,4) = 126, so P(U <= 3) = 7/126 >= 0.05 > 4/126 and the
    # 90% interval is (3rd smallest, 3rd largest) = (-5, 2.5).
    ci = rank_sum_interval(np.array([1.0, 2, 3, 4, 5]), np.array([0.5, 2.5, 6, 7]), 0.90)
    assert ci.exact
    assert ci.estimate == pytest.approx(-1.25)
    assert (ci.low, ci.high) == (-5.0, 2.5)


def test_textbook_shift() -> None:
    # Every difference x_i - y_j of these shifted samples is 10 + (i - j), i, j in 0..4:
    # the median is 10 and the 95% interval (U quantile 3 for 5 x 5, P(U<=2)=4/252) is (7, 13).
    x = np.arange(5.0) + 10
    y = np.arange(5.0)
    ci = rank_sum_interval(x, y, 0.95)
    assert ci.estimate == 10.0
    cdf = _rank_sum_cdf(5, 5)
    assert cdf[2] == pytest.approx(4 / 252) and cdf[3] == pytest.approx(7 / 252)
    assert (ci.low, ci.high) == (7.0, 13.0)


@pytest.mark.parametrize(("m", "n"), [(3, 4), (5, 5), (6, 3)])
def test_exact_distribution_matches_enumeration(m: int, n: int) -> None:
    counts: dict[int, int] = {}
    for xs in itertools.combinations(range(m + n), m):
        ys = [v for v in range(m + n) if v not in xs]
        u = sum(x > y for x in xs for y in ys)
        counts[u] = counts.get(u, 0) + 1
    total = math.comb(m + n, m)
    cumulative = np.cumsum([counts.get(u, 0) for u in range(m * n + 1)]) / total
    assert np.allclose(_rank_sum_cdf(m, n), cumulative)


def test_normal_interval_covers_shift_for_large_samples() -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(1.0, 1.0, 200), rng.normal(0.0, 1.0, 150)
    ci = rank_sum_interval(x, y, 0.95)
    assert not ci.exact
    assert ci.low < 1.0 < ci.high
    assert ci.low < ci.estimate < ci.high


def _slices(canary_rate: float, n: int = 30, seed: int = 0) -> list[Slice]:
    rng = np.random.default_rng(seed)
    return [
        Slice(
            10.0 * i,
            10.0,
            ArmSlice(500, int(rng.binomial(500, canary_rate)), tuple(rng.lognormal(0, 0.5, 20))),
            ArmSlice(500, int(rng.binomial(500, 0.02)), tuple(rng.lognormal(0, 0.5, 20))),
        )
        for i in range(n)
    ]


def test_judge_fails_worse_canary_and_fills_evidence() -> None:
    judgement = MannWhitneyJudge().judge(_slices(0.06))
    assert judgement.verdict is Verdict.FAIL
    errors = judgement.evidence[0]
    assert errors.metric == "error_rate" and errors.effect > 2 and errors.effect_low > 0
    assert errors.n_canary == 30 and errors.reason


def test_judge_never_fails_a_better_canary() -> None:
    assert MannWhitneyJudge().judge(_slices(0.0), final=True).verdict is not Verdict.FAIL
