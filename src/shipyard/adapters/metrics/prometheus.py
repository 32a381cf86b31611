"""Prometheus over its HTTP API: one instant query per judgement, answered as one number.

Semantics (close to Flagger's Prometheus provider):

* a vector with exactly one series, or a scalar, is a ``Sample``;
* an empty vector is ``NoData("query returned no series")`` (nothing served yet, unknown version);
* several series are ``NoData`` naming the count (Flagger's ``ErrMultipleValuesReturned``):
  aggregate the query (``sum(...)``, ``sum by (...)`` on one group) to get one number;
* NaN or ±Inf (``0/0`` when nothing was served) is ``NoData``;
* a query Prometheus rejects (parse or execution error) is ``InvalidError`` with its text;
* a Prometheus that cannot be reached, times out or answers garbage is ``AdapterError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from shipyard.adapters.metrics.promql import finite, render
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.metrics import MetricQuery, NoData, Sample

__all__ = ["PrometheusProvider", "Series"]

# errorType values that mean "your query is wrong", not "Prometheus is unwell"
_QUERY_ERRORS = frozenset({"bad_data", "execution"})


@dataclass(frozen=True, slots=True)
class Series:
    """One labelled series of a vector or range answer."""

    labels: Mapping[str, str]
    points: tuple[tuple[datetime, float], ...]

    @property
    def value(self) -> float:
        """The last point's value (an instant vector has exactly one)."""
        return self.points[-1][1]


def _timestamp(at: datetime) -> float:
    if at.tzinfo is None:
        raise InvalidError("metric queries need a timezone-aware time")
    return at.timestamp()


def _point(raw: Any) -> tuple[datetime, float]:
    try:
        ts, text = raw
        return datetime.fromtimestamp(float(ts), UTC), float(text)
    except (TypeError, ValueError) as exc:
        raise AdapterError(f"prometheus answered a malformed sample {raw!r}") from exc


class PrometheusProvider:
    kind: ClassVar[str] = "prometheus"

    def __init__(
        self, base_url: str, client: httpx.Client | None = None, timeout: float = 5.0
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidError(f"prometheus address must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self.timeout = timeout

    # -- the port -------------------------------------------------------------------------

    def query(self, q: MetricQuery, at: datetime) -> Sample | NoData:
        expression = render(q)
        series, scalar = self._instant(expression, at)
        if scalar is not None:
            when, value = scalar
        elif not series:
            return NoData(expression, "query returned no series")
        elif len(series) > 1:
            return NoData(
                expression,
                f"query returned {len(series)} series, expected one; aggregate it "
                "(e.g. sum(...)) or narrow the label matchers",
            )
        else:
            when, value = series[0].points[-1]
        if not finite(value):
            return NoData(expression, f"query returned {value} (nothing to divide by?)")
        return Sample(value, when, expression)

    def ping(self) -> None:
        try:
            resp = self._client.get(f"{self.base_url}/-/ready", timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code != 200:
            raise AdapterError(
                f"prometheus at {self.base_url} is not ready: HTTP {resp.status_code} "
                f"{resp.text.strip()[:200]}"
            )

    # -- beyond the port ------------------------------------------------------------------

    def vector(self, q: MetricQuery | str, at: datetime) -> list[Series]:
        """Every series of an instant query (e.g. ``sum by (le) (...)`` for histogram buckets)."""
        series, scalar = self._instant(render(q), at)
        if scalar is not None:
            return [Series({}, (scalar,))]
        return series

    def range_query(
        self, q: MetricQuery | str, start: datetime, end: datetime, step: float
    ) -> list[Series]:
        """``/api/v1/query_range``: every series with its points from ``start`` to ``end``."""
        if step <= 0:
            raise InvalidError("range query step must be positive")
        params = {
            "query": render(q),
            "start": f"{_timestamp(start):.3f}",
            "end": f"{_timestamp(end):.3f}",
            "step": f"{step:g}",
        }
        data = self._get("/api/v1/query_range", params)
        if data.get("resultType") != "matrix":
            raise AdapterError(f"prometheus answered a {data.get('resultType')} to a range query")
        return [
            Series(dict(r.get("metric", {})), tuple(_point(p) for p in r.get("values", [])))
            for r in data.get("result", [])
        ]

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    # -- plumbing -------------------------------------------------------------------------

    def _instant(
        self, expression: str, at: datetime
    ) -> tuple[list[Series], tuple[datetime, float] | None]:
        data = self._get("/api/v1/query", {"query": expression, "time": f"{_timestamp(at):.3f}"})
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            return [], _point(result)
        if kind == "vector" and isinstance(result, list):
            return [
                Series(dict(r.get("metric", {})), (_point(r.get("value")),)) for r in result
            ], None
        if kind == "matrix":
            raise InvalidError(
                f"query {expression!r} returns a range vector; wrap it in a function such as "
                "rate(...) or sum_over_time(...)"
            )
        raise InvalidError(f"query {expression!r} returns a {kind}, not a number")

    def _unreachable(self, exc: Exception) -> AdapterError:
        return AdapterError(f"prometheus at {self.base_url} unreachable: {exc}")

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            resp = self._client.get(f"{self.base_url}{path}", params=params, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        try:
            body = resp.json()
        except ValueError as exc:
            raise AdapterError(
                f"prometheus at {self.base_url} answered HTTP {resp.status_code} without JSON: "
                f"{resp.text.strip()[:200]}"
            ) from exc
        if not isinstance(body, dict):
            raise AdapterError(f"prometheus at {self.base_url} answered {body!r}")
        if body.get("status") != "success":
            error_type, error = body.get("errorType", "?"), body.get("error", "unknown error")
            if error_type in _QUERY_ERRORS:
                raise InvalidError(
                    f"prometheus rejected the query {params.get('query')!r}: {error}",
                    details={"error_type": error_type, "error": error},
                )
            raise AdapterError(
                f"prometheus at {self.base_url} failed ({error_type}, HTTP {resp.status_code}): "
                f"{error}"
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise AdapterError(f"prometheus at {self.base_url} answered no data object")
        return data
