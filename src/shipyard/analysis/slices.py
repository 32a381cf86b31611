"""From cumulative counters to judge slices: pure arithmetic, no I/O.

A metrics source (the router's counters, a scrape, Prometheus) reports *cumulative* counters per
version: requests, errors and optionally a latency histogram (Prometheus ``_bucket`` counts,
cumulative in ``le``). The engine takes a snapshot of both arms at every slice boundary; the
difference between two snapshots is what the arm served in between.

Counter resets: a counter never decreases unless its process restarted, so when *any* counter of
an arm went down, the whole arm is taken to have restarted and the new values are the delta (what
the new process served since it started), as Prometheus' ``increase()`` does.

Latencies: the judges want per-request latencies; a histogram only says how many requests fell
in each bucket. Each bucket's requests are spread evenly inside it (the same linear interpolation
``histogram_quantile`` uses; the first bucket starts at 0, the ``+Inf`` bucket is pinned to the
highest finite bound), down-sampled to at most ``max_latencies`` by quantiles, then shuffled with
a fixed seed: the sequential judge pairs canary and baseline requests by position, so the order
must not be sorted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shipyard.analysis.samples import ArmSlice, Slice
from shipyard.errors import InvalidError

__all__ = [
    "ArmCounters",
    "arm_delta",
    "build_slice",
    "build_slices",
    "histogram_latencies",
    "was_reset",
]

DEFAULT_MAX_LATENCIES = 1000


@dataclass(frozen=True, slots=True)
class ArmCounters:
    """Cumulative counters of one version at one instant (floats, as Prometheus reports them)."""

    requests: float
    errors: float = 0.0
    buckets: Mapping[float, float] = field(default_factory=dict)  # le -> cumulative count

    def __post_init__(self) -> None:
        values = (self.requests, self.errors, *self.buckets.values())
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise InvalidError("counters must be finite and non-negative")
        if any(math.isnan(le) for le in self.buckets):
            raise InvalidError("histogram bucket bounds must be numbers")


ZERO = ArmCounters(0.0)


def was_reset(before: ArmCounters, after: ArmCounters) -> bool:
    if after.requests < before.requests or after.errors < before.errors:
        return True
    return any(after.buckets.get(le, 0.0) < count for le, count in before.buckets.items())


def _count(value: float) -> int:
    return max(0, round(value))


def histogram_latencies(
    bucket_counts: Mapping[float, float], max_latencies: int = DEFAULT_MAX_LATENCIES, seed: int = 0
) -> tuple[float, ...]:
    """Representative latencies for *cumulative* bucket counts (``le`` -> count), shuffled."""
    if max_latencies < 0:
        raise InvalidError("max_latencies must be >= 0")
    bounds = sorted(bucket_counts)
    finite_bounds = [b for b in bounds if math.isfinite(b)]
    top = finite_bounds[-1] if finite_bounds else 0.0
    per_bucket: list[tuple[float, float, int]] = []  # (low, high, count)
    low, previous = 0.0, 0.0
    for le in bounds:
        cumulative = max(bucket_counts[le], previous)  # tolerate a non-monotonic scrape
        n = _count(cumulative - previous)
        high = le if math.isfinite(le) else top
        if n:
            per_bucket.append((min(low, high), high, n))
        low, previous = high, cumulative
    total = sum(n for _, _, n in per_bucket)
    if total == 0 or max_latencies == 0:
        return ()
    m = min(total, max_latencies)
    # the m quantiles (k + 0.5) / m of the piecewise-uniform distribution
    out: list[float] = []
    it = iter(per_bucket)
    lo, hi, n = next(it)
    seen = 0
    for k in range(m):
        target = (k + 0.5) * total / m
        while target > seen + n:
            seen += n
            lo, hi, n = next(it)
        out.append(lo + (hi - lo) * (target - seen) / n)
    random.Random(seed).shuffle(out)
    return tuple(out)


def arm_delta(
    before: ArmCounters | None,
    after: ArmCounters,
    *,
    max_latencies: int = DEFAULT_MAX_LATENCIES,
    seed: int = 0,
) -> ArmSlice:
    """What the arm served between two snapshots; ``before=None`` means it had no series yet.

    Errors are capped at requests: the two counters may be read a moment apart.
    """
    base = before or ZERO
    if was_reset(base, after):
        base = ZERO
    requests = _count(after.requests - base.requests)
    errors = min(_count(after.errors - base.errors), requests)
    deltas = {le: after.buckets[le] - base.buckets.get(le, 0.0) for le in after.buckets}
    latencies = histogram_latencies(deltas, max_latencies, seed) if deltas else ()
    return ArmSlice(requests=requests, errors=errors, latencies=latencies)


def build_slice(
    start: float,
    end: float,
    canary: tuple[ArmCounters | None, ArmCounters],
    baseline: tuple[ArmCounters | None, ArmCounters],
    *,
    max_latencies: int = DEFAULT_MAX_LATENCIES,
    seed: int = 0,
) -> Slice:
    """One slice from (before, after) snapshots of both arms; times in seconds since the start."""
    if end <= start:
        raise InvalidError(f"slice end {end} must be after its start {start}")
    return Slice(
        start=start,
        duration=end - start,
        canary=arm_delta(*canary, max_latencies=max_latencies, seed=seed),
        baseline=arm_delta(*baseline, max_latencies=max_latencies, seed=seed + 1),
    )


def build_slices(
    times: Sequence[float],
    canary: Sequence[ArmCounters | None],
    baseline: Sequence[ArmCounters | None],
    *,
    max_latencies: int = DEFAULT_MAX_LATENCIES,
) -> list[Slice]:
    """Consecutive slices from snapshots taken at ``times``; ``None`` = the version had no series."""
    if not len(times) == len(canary) == len(baseline):
        raise InvalidError("times, canary and baseline snapshots must have the same length")
    slices = []
    for i in range(1, len(times)):
        slices.append(
            build_slice(
                times[i - 1],
                times[i],
                (canary[i - 1], canary[i] or ZERO),
                (baseline[i - 1], baseline[i] or ZERO),
                max_latencies=max_latencies,
                seed=2 * i,
            )
        )
    return slices
