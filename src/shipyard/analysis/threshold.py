"""Argo Rollouts / Flagger-style judge: an absolute limit checked once per interval.

Each completed interval is one measurement of the canary alone; a measurement above its limit
is a failure, and the analysis fails once failures exceed ``failure_limit`` (Argo's
``failureLimit``; Flagger's ``threshold`` is ``failure_limit + 1``). The baseline is ignored,
which is why it needs wide margins and still misfires when traffic drifts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shipyard.analysis.samples import Evidence, Judgement, Metric, Slice, Verdict
from shipyard.errors import InvalidError

__all__ = ["ThresholdConfig", "ThresholdJudge", "first_failure"]


@dataclass(frozen=True, slots=True)
class ThresholdConfig:
    """``None`` limits are not checked; ``max_latency`` bounds the interval's mean latency."""

    interval_seconds: float = 60.0
    max_error_rate: float | None = 0.02
    max_latency: float | None = None
    failure_limit: int = 1
    min_requests: int = 1

    def __post_init__(self) -> None:
        if self.interval_seconds <= 0:
            raise InvalidError("interval_seconds must be positive")
        if self.failure_limit < 0 or self.min_requests < 1:
            raise InvalidError("failure_limit must be >= 0 and min_requests >= 1")
        if self.max_error_rate is None and self.max_latency is None:
            raise InvalidError("set max_error_rate or max_latency")


def first_failure(failed: NDArray[np.bool_], failure_limit: int) -> NDArray[np.int64]:
    """Index of the measurement at which failures first exceed the limit, or -1 (last axis)."""
    over = np.cumsum(failed, axis=-1) > failure_limit
    idx = np.argmax(over, axis=-1)
    return np.where(over.any(axis=-1), idx, -1).astype(np.int64)


class ThresholdJudge:
    name = "threshold"

    def __init__(self, config: ThresholdConfig | None = None) -> None:
        self.config = config or ThresholdConfig()

    def judge(self, slices: Sequence[Slice], *, final: bool = False) -> Judgement:
        cfg = self.config
        if not slices:
            return Judgement(Verdict.NO_DATA)
        horizon = max(s.end for s in slices)
        complete = math.floor(horizon / cfg.interval_seconds + 1e-9)
        if final and horizon > complete * cfg.interval_seconds + 1e-9:
            complete += 1  # the last, partial interval is measured when the window closes
        evidence = []
        for metric, limit in (
            (Metric.ERROR_RATE, cfg.max_error_rate),
            (Metric.LATENCY, cfg.max_latency),
        ):
            if limit is not None:
                evidence.append(self._metric(metric, limit, slices, complete, final))
        verdicts = [e.verdict for e in evidence]
        if Verdict.FAIL in verdicts:
            verdict = Verdict.FAIL
        elif all(v is Verdict.NO_DATA for v in verdicts):
            verdict = Verdict.NO_DATA
        elif Verdict.CONTINUE in verdicts:
            verdict = Verdict.CONTINUE
        else:
            verdict = Verdict.PASS if final else Verdict.CONTINUE
        return Judgement(verdict, tuple(evidence))

    def _metric(
        self, metric: Metric, limit: float, slices: Sequence[Slice], complete: int, final: bool
    ) -> Evidence:
        cfg = self.config
        measured: list[float] = []
        n_c = 0
        for i in range(complete):
            lo, hi = i * cfg.interval_seconds, (i + 1) * cfg.interval_seconds
            inside = [s for s in slices if lo <= s.start < hi]
            requests = sum(s.canary.requests for s in inside)
            n_c += requests
            if requests < cfg.min_requests:
                continue  # Argo counts this as inconclusive, not failed
            if metric is Metric.ERROR_RATE:
                measured.append(sum(s.canary.errors for s in inside) / requests)
            else:
                lat = [v for s in inside for v in s.canary.latencies]
                if lat:
                    measured.append(float(np.mean(lat)))
        failures = sum(v > limit for v in measured)
        if not measured and not final and any(s.canary.requests for s in slices):
            verdict = Verdict.CONTINUE  # data is flowing; the first interval is not over yet
        elif not measured:
            verdict = Verdict.NO_DATA
        elif failures > cfg.failure_limit:
            verdict = Verdict.FAIL
        else:
            verdict = Verdict.PASS if final else Verdict.CONTINUE
        last = measured[-1] if measured else math.nan
        return Evidence(
            judge=self.name,
            metric=metric.value,
            verdict=verdict,
            statistic=float(failures),
            statistic_name="failed measurements",
            bound=float(cfg.failure_limit),
            effect=last,
            effect_name=f"last interval {metric.value}",
            effect_low=float(min(measured)) if measured else math.nan,
            effect_high=float(max(measured)) if measured else math.nan,
            n_canary=n_c,
            n_baseline=sum(s.baseline.requests for s in slices),
            alpha=None,
            reason=f"{failures} of {len(measured)} measurements above {limit:g}",
        )
