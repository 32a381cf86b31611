"""Counter snapshots to judge slices: deltas, resets, histograms."""

from __future__ import annotations

import math
import statistics

import pytest

from shipyard.analysis import Verdict, make_judge
from shipyard.analysis.slices import (
    ArmCounters,
    arm_delta,
    build_slice,
    build_slices,
    histogram_latencies,
)
from shipyard.errors import InvalidError


def test_delta_is_the_difference_of_cumulative_counters() -> None:
    arm = arm_delta(ArmCounters(100, 3), ArmCounters(250, 10))
    assert (arm.requests, arm.errors, arm.latencies) == (150, 7, ())


def test_no_before_means_the_version_just_appeared() -> None:
    assert arm_delta(None, ArmCounters(40, 2)).requests == 40


def test_a_decrease_is_a_restart_and_the_new_value_is_the_delta() -> None:
    arm = arm_delta(ArmCounters(1000, 50), ArmCounters(30, 1))
    assert (arm.requests, arm.errors) == (30, 1)


def test_a_reset_of_one_counter_resets_the_whole_arm() -> None:
    # errors went down, requests did not (the new process already served more): restart
    arm = arm_delta(ArmCounters(100, 9), ArmCounters(120, 2))
    assert (arm.requests, arm.errors) == (120, 2)


def test_a_bucket_decrease_is_a_restart_too() -> None:
    before = ArmCounters(10, 0, {0.1: 10.0, math.inf: 10.0})
    after = ArmCounters(12, 0, {0.1: 2.0, math.inf: 12.0})
    assert arm_delta(before, after).requests == 12


def test_errors_never_exceed_requests_when_read_a_moment_apart() -> None:
    arm = arm_delta(ArmCounters(100, 0), ArmCounters(101, 3))
    assert (arm.requests, arm.errors) == (1, 1)


def test_float_counters_are_rounded() -> None:
    arm = arm_delta(ArmCounters(0.0), ArmCounters(10.4, 1.6))
    assert (arm.requests, arm.errors) == (10, 2)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_counters_must_be_finite_and_non_negative(bad: float) -> None:
    with pytest.raises(InvalidError):
        ArmCounters(bad)


def test_histogram_latencies_spread_inside_their_buckets() -> None:
    lat = histogram_latencies({0.1: 10, 0.5: 30, math.inf: 30})
    assert len(lat) == 30
    assert sum(v <= 0.1 for v in lat) == 10
    assert all(0.1 <= v <= 0.5 for v in lat if v > 0.1)
    assert len(set(lat)) == 30  # spread, not piled on the bound


def test_inf_bucket_is_pinned_to_the_highest_finite_bound() -> None:
    lat = histogram_latencies({0.1: 0, 0.5: 0, math.inf: 4})
    assert lat == (0.5, 0.5, 0.5, 0.5)


def test_histogram_latencies_are_downsampled_by_quantiles_and_shuffled() -> None:
    lat = histogram_latencies({1.0: 5000, 2.0: 10000}, max_latencies=100)
    assert len(lat) == 100
    assert sum(v <= 1.0 for v in lat) == 50
    assert list(lat) != sorted(lat)
    assert statistics.median(lat) == pytest.approx(1.0, abs=0.02)
    assert lat == histogram_latencies({1.0: 5000, 2.0: 10000}, max_latencies=100)  # pure


def test_histogram_deltas_give_the_slice_latencies() -> None:
    before = ArmCounters(10, 0, {0.1: 10, 1.0: 10, math.inf: 10})
    after = ArmCounters(30, 0, {0.1: 10, 1.0: 30, math.inf: 30})
    arm = arm_delta(before, after)
    assert len(arm.latencies) == 20
    assert all(0.1 <= v <= 1.0 for v in arm.latencies)


def test_build_slice_times_and_arms() -> None:
    sl = build_slice(
        10.0,
        20.0,
        canary=(ArmCounters(5, 0), ArmCounters(15, 1)),
        baseline=(ArmCounters(100, 1), ArmCounters(200, 2)),
    )
    assert (sl.start, sl.duration) == (10.0, 10.0)
    assert (sl.canary.requests, sl.canary.errors) == (10, 1)
    assert (sl.baseline.requests, sl.baseline.errors) == (100, 1)
    with pytest.raises(InvalidError):
        build_slice(5.0, 5.0, (None, ArmCounters(0)), (None, ArmCounters(0)))


def test_build_slices_from_a_series_of_snapshots() -> None:
    times = [0.0, 10.0, 20.0, 30.0]
    canary = [None, ArmCounters(10, 1), ArmCounters(25, 2), ArmCounters(5, 0)]  # restart at 30
    baseline = [ArmCounters(0), ArmCounters(90, 1), ArmCounters(180, 2), ArmCounters(270, 3)]
    slices = build_slices(times, canary, baseline)
    assert [(s.start, s.canary.requests, s.canary.errors) for s in slices] == [
        (0.0, 10, 1),
        (10.0, 15, 1),
        (20.0, 5, 0),
    ]
    assert [s.baseline.requests for s in slices] == [90, 90, 90]
    with pytest.raises(InvalidError):
        build_slices(times, canary[:2], baseline)


def test_slices_feed_the_judges() -> None:
    """A canary failing 30% against a 1% baseline fails the default judge."""
    times = [10.0 * i for i in range(31)]
    canary = [ArmCounters(100.0 * i, 30.0 * i) for i in range(31)]
    baseline = [ArmCounters(900.0 * i, 9.0 * i) for i in range(31)]
    judgement = make_judge("sequential").judge(build_slices(times, canary, baseline))
    assert judgement.verdict is Verdict.FAIL
