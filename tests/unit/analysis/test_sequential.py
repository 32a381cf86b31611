"""The sequential judge keeps its false-rollback promise and catches what it should."""

from __future__ import annotations

import math

import numpy as np
import pytest
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
from shipyard.analysis.sequential import error_trials, harm_grid, mixture_log_evalue
from shipyard.errors import InvalidError

SHARE = np.repeat([0.05, 0.25, 0.5], 30)  # the 15-minute ladder in 10 s slices


def _streams(
    rng: np.random.Generator, runs: int, base: float, ratio: float, drift: bool
) -> tuple[np.ndarray, ...]:
    t = np.arange(SHARE.size)
    load = np.ones((runs, t.size))
    if drift:  # load and error rate move together for both arms
        load = np.exp(0.3 * np.sin(2 * np.pi * t / 45 + rng.uniform(0, 6.3, (runs, 1))))
    total = rng.poisson(2000 * load)
    nc = rng.binomial(total, SHARE)
    nb = total - nc
    rate = np.clip(base * load**1.5 * (1 + 0.5 * t / t.size), 0, 1)
    return rng.binomial(nc, np.clip(rate * ratio, 0, 1)), nc, rng.binomial(nb, rate), nb


def _error_crossings(cfg: SequentialConfig, *streams: np.ndarray) -> np.ndarray:
    succ, trials, off = error_trials(*streams)
    low, high = cfg.effect_range(Metric.ERROR_RATE)
    log_e = mixture_log_evalue(succ, trials, off, harm_grid(low, high, cfg.grid_size))
    return log_e.max(axis=-1) >= math.log(1 / cfg.alpha_per_test(Metric.ERROR_RATE))


@pytest.mark.parametrize("drift", [False, True])
def test_false_rollback_on_aa_stays_within_alpha(drift: bool) -> None:
    cfg = SequentialConfig()
    runs = 4000
    rng = np.random.default_rng(20261122 + drift)
    crossed = _error_crossings(cfg, *_streams(rng, runs, 0.01, 1.0, drift))
    alpha = cfg.alpha_per_test(Metric.ERROR_RATE)
    # Even a rate exactly at alpha would exceed this count with probability < 0.1%.
    assert crossed.sum() <= stats.binom.ppf(0.999, runs, alpha)
    assert crossed.mean() <= alpha


def test_latency_sign_test_false_rollback_within_alpha() -> None:
    cfg = SequentialConfig()
    rng = np.random.default_rng(5)
    pairs = np.broadcast_to(np.round(2000 * np.minimum(SHARE, 1 - SHARE)), (4000, SHARE.size))
    wins = rng.binomial(pairs.astype(int), 0.5)
    low, high = cfg.effect_range(Metric.LATENCY)
    log_e = mixture_log_evalue(
        wins, pairs, np.zeros(pairs.shape), harm_grid(low, high, cfg.grid_size)
    )
    crossed = log_e.max(axis=-1) >= math.log(1 / cfg.alpha_per_test(Metric.LATENCY))
    assert crossed.mean() <= cfg.alpha_per_test(Metric.LATENCY)


@pytest.mark.parametrize("drift", [False, True])
def test_large_regression_always_caught_early(drift: bool) -> None:
    cfg = SequentialConfig()
    rng = np.random.default_rng(99)
    ec, nc, eb, nb = _streams(rng, 500, 0.01, 5.0, drift)
    succ, trials, off = error_trials(ec, nc, eb, nb)
    low, high = cfg.effect_range(Metric.ERROR_RATE)
    log_e = mixture_log_evalue(succ, trials, off, harm_grid(low, high, cfg.grid_size))
    hit = log_e >= math.log(1 / cfg.alpha_per_test(Metric.ERROR_RATE))
    assert hit.any(axis=-1).all()
    first = hit.argmax(axis=-1)
    exposure = np.cumsum(nc, axis=-1)[np.arange(first.size), first]
    assert np.median(exposure) <= 300


def _slices(
    rng: np.random.Generator, n: int, canary_rate: float, latency_factor: float = 1.0
) -> list[Slice]:
    out = []
    for i in range(n):
        nc, nb = 100, 1900
        out.append(
            Slice(
                10.0 * i,
                10.0,
                ArmSlice(
                    nc,
                    int(rng.binomial(nc, canary_rate)),
                    tuple(latency_factor * rng.lognormal(0, 0.5, nc)),
                ),
                ArmSlice(nb, int(rng.binomial(nb, 0.01)), tuple(rng.lognormal(0, 0.5, nb))),
            )
        )
    return out


def test_judge_fails_regression_with_full_evidence() -> None:
    judgement = SequentialJudge().judge(_slices(np.random.default_rng(1), 12, 0.05))
    assert judgement.verdict is Verdict.FAIL
    errors = next(e for e in judgement.evidence if e.metric == "error_rate")
    assert errors.verdict is Verdict.FAIL
    assert errors.statistic >= errors.bound == pytest.approx(1 / 0.015)
    assert errors.effect_low <= errors.effect <= errors.effect_high
    assert errors.effect_low > 1.0
    assert errors.n_canary == 1200 and errors.n_baseline == 12 * 1900
    assert errors.alpha == pytest.approx(0.015) and errors.reason


def test_judge_agrees_with_vectorised_kernel() -> None:
    cfg = SequentialConfig(metrics=(Metric.ERROR_RATE,))
    for seed in range(20):
        slices = _slices(np.random.default_rng(seed), 20, 0.018)
        streams = [
            np.array([[getattr(getattr(s, arm), f) for s in slices]])
            for arm, f in (
                ("canary", "errors"),
                ("canary", "requests"),
                ("baseline", "errors"),
                ("baseline", "requests"),
            )
        ]
        expected = bool(_error_crossings(cfg, *streams)[0])
        assert (SequentialJudge(cfg).judge(slices).verdict is Verdict.FAIL) == expected


def test_latency_regression_fails_and_equal_latency_does_not() -> None:
    cfg = SequentialConfig(metrics=(Metric.LATENCY,))
    slow = SequentialJudge(cfg).judge(_slices(np.random.default_rng(3), 10, 0.01, 1.5))
    assert slow.verdict is Verdict.FAIL
    assert slow.evidence[0].effect > 0.6
    same = SequentialJudge(cfg).judge(_slices(np.random.default_rng(4), 30, 0.01), final=True)
    assert same.verdict is Verdict.PASS  # 30 x 100 pairs rule out P(slower) >= 0.55


def test_better_canary_never_fails_unless_either_direction() -> None:
    slices = _slices(np.random.default_rng(8), 30, 0.0)
    cfg = SequentialConfig(metrics=(Metric.ERROR_RATE,))
    assert SequentialJudge(cfg).judge(slices, final=True).verdict is not Verdict.FAIL
    either = SequentialConfig(metrics=(Metric.ERROR_RATE,), error_direction=Direction.EITHER)
    assert SequentialJudge(either).judge(slices).verdict is Verdict.FAIL


def test_continue_then_inconclusive_and_no_data() -> None:
    judge = SequentialJudge(SequentialConfig(metrics=(Metric.ERROR_RATE,)))
    slices = _slices(np.random.default_rng(2), 2, 0.01)
    assert judge.judge(slices).verdict is Verdict.CONTINUE
    assert judge.judge(slices, final=True).verdict is Verdict.INCONCLUSIVE
    assert judge.judge([]).verdict is Verdict.NO_DATA


def test_confidence_sequence_covers_true_ratio() -> None:
    cfg = SequentialConfig(metrics=(Metric.ERROR_RATE,))
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(40):
        e = SequentialJudge(cfg).judge(_slices(rng, 30, 0.02)).evidence[0]
        covered += e.effect_low <= 2.0 <= e.effect_high
    assert covered >= 38


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha": 0.0},
        {"min_error_ratio": 1.0},
        {"min_slower_probability": 0.4},
        {"metrics": ()},
        {"latency_alpha_share": 1.0},
        {"grid_size": 0},
    ],
)
def test_bad_config_is_invalid(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidError):
        SequentialConfig(**kwargs)  # type: ignore[arg-type]


def test_no_errors_at_all_is_data_not_no_data() -> None:
    judge = SequentialJudge(SequentialConfig(metrics=(Metric.ERROR_RATE,)))
    slices = [Slice(0.0, 10.0, ArmSlice(100), ArmSlice(1900))]
    assert judge.judge(slices).verdict is Verdict.CONTINUE
    assert judge.judge(slices, final=True).verdict is Verdict.INCONCLUSIVE
    assert judge.judge([Slice(0.0, 10.0, ArmSlice(0), ArmSlice(1900))]).verdict is Verdict.NO_DATA
