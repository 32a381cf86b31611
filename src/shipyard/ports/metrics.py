"""The metric ports: numbers for the judges, counted by the router or queried from Prometheus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from shipyard.ports.routers import RouteRef


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """A query template; ``{version}`` is replaced by the candidate being measured."""

    expression: str
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Sample:
    value: float
    at: datetime
    query: str  # the expression as sent, for the evidence


@dataclass(frozen=True, slots=True)
class NoData:
    query: str
    reason: str


class MetricProvider(Protocol):
    """Raises AdapterError when the provider is unreachable; no data is a value, not an error."""

    kind: ClassVar[str]

    def query(self, q: MetricQuery, at: datetime) -> Sample | NoData: ...

    def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Counters:
    """Cumulative counters for one version since the router started (deltas are the caller's)."""

    requests: int
    errors_5xx: int
    response_time_ms_avg: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
    # cumulative latency histogram, Prometheus-style: upper bound in seconds (``inf`` last) ->
    # requests that took at most that long; empty when the router cannot measure latencies
    latency_buckets: dict[float, float] = field(default_factory=dict)


class RouterCounters(Protocol):
    """What a router kind counted per version (its own stats, read live); one per router kind."""

    kind: ClassVar[str]

    def counters(self, route: RouteRef) -> dict[str, Counters]:
        """Per candidate name; raises AdapterError when the proxy is unreachable."""
