"""Observation and verdict types shared by every canary judge.

Observations arrive as time slices holding both arms, because the only comparison that stays
fair when traffic and error rates drift is canary against baseline *in the same slice*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from shipyard.errors import InvalidError

__all__ = [
    "ArmSlice",
    "Direction",
    "Evidence",
    "Judge",
    "Judgement",
    "Metric",
    "RateDifference",
    "Slice",
    "Verdict",
    "combine_verdicts",
]


class Verdict(StrEnum):
    """CONTINUE means "keep exposing and ask again"; INCONCLUSIVE only at the end of a window."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    CONTINUE = "continue"
    NO_DATA = "no_data"


class Metric(StrEnum):
    ERROR_RATE = "error_rate"
    LATENCY = "latency"


class Direction(StrEnum):
    """Which way is "worse"; a canary that only got better must never be rolled back."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


@dataclass(frozen=True, slots=True)
class ArmSlice:
    """What one arm (canary or baseline) served during one slice."""

    requests: int
    errors: int = 0
    latencies: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.requests < 0 or self.errors < 0 or self.errors > self.requests:
            raise InvalidError(
                f"slice counts must satisfy 0 <= errors <= requests, got {self.errors}/{self.requests}"
            )
        if any(not math.isfinite(v) or v < 0 for v in self.latencies):
            raise InvalidError("latencies must be finite and non-negative")


@dataclass(frozen=True, slots=True)
class Slice:
    """Canary and baseline observed over the same time span (seconds since analysis start)."""

    start: float
    duration: float
    canary: ArmSlice
    baseline: ArmSlice

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.start < 0:
            raise InvalidError("a slice needs start >= 0 and duration > 0")

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class RateDifference:
    """Exact one-sided bounds of each arm's error rate, each at ``alpha / 2`` (Bonferroni).

    ``increase_high`` bounds how far the canary's error rate is above the baseline's with
    confidence ``1 - alpha``; a pass uses it once, at the end of the window, so a fixed-sample
    bound is valid there even though the window was watched all along.
    """

    canary_low: float
    canary_high: float
    baseline_low: float
    baseline_high: float
    tolerance: float
    alpha: float

    @property
    def increase_high(self) -> float:
        """Largest canary-minus-baseline error rate the data still allow."""
        return self.canary_high - self.baseline_low

    @property
    def decrease_high(self) -> float:
        """Largest baseline-minus-canary error rate the data still allow."""
        return self.baseline_high - self.canary_low


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a judge decided what it did, for one metric; rendered in UIs and audit logs."""

    judge: str
    metric: str
    verdict: Verdict
    statistic: float
    statistic_name: str
    bound: float
    effect: float
    effect_name: str
    effect_low: float
    effect_high: float
    n_canary: int
    n_baseline: int
    alpha: float | None
    reason: str
    # how a pass ruled harm out: "ratio" (the effect's interval) or "negligible_increase"
    pass_criterion: str = ""
    rate_difference: RateDifference | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)


class Judge(Protocol):
    """A judge is pure: same slices in, same judgement out; time is read from the slices."""

    name: str

    def judge(self, slices: Sequence[Slice], *, final: bool = False) -> Judgement: ...


def combine_verdicts(verdicts: Iterable[Verdict]) -> Verdict:
    """One failing metric fails the canary; passing needs every metric with data to pass."""
    seen = list(verdicts)
    if not seen or all(v is Verdict.NO_DATA for v in seen):
        return Verdict.NO_DATA
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    if Verdict.CONTINUE in seen:
        return Verdict.CONTINUE
    if Verdict.INCONCLUSIVE in seen:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS
