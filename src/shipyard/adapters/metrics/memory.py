"""A provider that answers what it was told: for unit tests of the engine and its callers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from shipyard.adapters.metrics.promql import check_aware, finite, render
from shipyard.errors import AdapterError
from shipyard.ports.metrics import MetricQuery, NoData, Sample

__all__ = ["MemoryProvider"]

Value = float | None | Callable[[datetime], float | None]


class MemoryProvider:
    """Values are keyed by the *rendered* expression; a callable value is asked with ``at``.

    ``None`` (or an unknown expression) is ``NoData``; ``down = True`` makes every call raise
    ``AdapterError`` as an unreachable provider would. ``asked`` records rendered expressions.
    """

    kind: ClassVar[str] = "memory"

    def __init__(self, values: dict[str, Value] | None = None) -> None:
        self.values: dict[str, Value] = dict(values or {})
        self.down = False
        self.asked: list[str] = []

    def set(self, expression: str, value: Value) -> None:
        self.values[expression] = value

    def query(self, q: MetricQuery, at: datetime) -> Sample | NoData:
        self._check()
        check_aware(at)
        expression = render(q)
        self.asked.append(expression)
        if expression not in self.values:
            return NoData(expression, "query returned no series")
        stored = self.values[expression]
        value = stored(at) if callable(stored) else stored
        if value is None:
            return NoData(expression, "query returned no series")
        if not finite(value):
            return NoData(expression, f"query returned {value}")
        return Sample(value, at, expression)

    def ping(self) -> None:
        self._check()

    def close(self) -> None:
        return None

    def _check(self) -> None:
        if self.down:
            raise AdapterError("memory metric provider unreachable: marked down")
