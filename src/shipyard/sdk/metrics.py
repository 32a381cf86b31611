"""Cohort metrics counted in the app: exposures and outcomes per flag and variant.

A release policy that routes traffic with a flag needs per-cohort numbers without a proxy; the
SDK counts them where the decision happens, and a reporter (or router) drains snapshots.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CohortMetrics", "MetricsSnapshot", "empty", "report_body"]


@dataclass(frozen=True)
class MetricsSnapshot:
    """Counts since the last drain: ``exposures[flag][variant]``, ``outcomes[flag][variant][event]``."""

    exposures: dict[str, dict[str, int]] = field(default_factory=dict)
    outcomes: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    outcome_values: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


class CohortMetrics:
    """Thread-safe counters; cheap enough to bump on every evaluation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._exposures: Counter[tuple[str, str]] = Counter()
        self._outcomes: Counter[tuple[str, str, str]] = Counter()
        self._values: dict[tuple[str, str, str], float] = {}

    def expose(self, flag: str, variant: str) -> None:
        with self._lock:
            self._exposures[(flag, variant)] += 1

    def outcome(self, flag: str, variant: str, event: str, value: float | None = None) -> None:
        key = (flag, variant, event)
        with self._lock:
            self._outcomes[key] += 1
            if value is not None:
                self._values[key] = self._values.get(key, 0.0) + value

    def snapshot(self, *, reset: bool = False) -> MetricsSnapshot:
        with self._lock:
            exposures, outcomes, values = self._exposures, self._outcomes, self._values
            if reset:
                self._exposures, self._outcomes, self._values = Counter(), Counter(), {}
            else:
                exposures, outcomes, values = Counter(exposures), Counter(outcomes), dict(values)
        snap = MetricsSnapshot()
        for (flag, variant), n in exposures.items():
            snap.exposures.setdefault(flag, {})[variant] = n
        for (flag, variant, event), n in outcomes.items():
            snap.outcomes.setdefault(flag, {}).setdefault(variant, {})[event] = n
        for (flag, variant, event), total in values.items():
            snap.outcome_values.setdefault(flag, {}).setdefault(variant, {})[event] = total
        return snap


def report_body(snapshot: MetricsSnapshot) -> dict[str, dict[str, dict[str, Any]]]:
    """The ``flags`` part of a metrics report: ``{flag: {variant: {exposures, outcomes}}}``.

    Outcome *values* stay in the app (they are for business metrics, not for the judges)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for flag, variants in snapshot.exposures.items():
        for variant, n in variants.items():
            out.setdefault(flag, {}).setdefault(variant, {})["exposures"] = n
    for flag, happened in snapshot.outcomes.items():
        for variant, events in happened.items():
            out.setdefault(flag, {}).setdefault(variant, {})["outcomes"] = dict(events)
    return out


def empty(snapshot: MetricsSnapshot) -> bool:
    return not snapshot.exposures and not snapshot.outcomes
