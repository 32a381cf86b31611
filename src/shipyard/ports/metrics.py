"""The metric-provider port: numbers for the judges, from the router or from Prometheus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol


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
