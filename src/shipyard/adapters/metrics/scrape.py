"""Read a ``/metrics`` exposition endpoint directly: no Prometheus, no history, only "now".

The fast path for tests and for an embedded target. It answers a small, exact subset of PromQL
(after the ``{placeholders}`` are filled, as for Prometheus):

    selector                       metric_name  or  metric_name{label OP "value", ...}
    sum(selector)                  the sum over every matching sample
    sum by (label, ...) (selector) one sum per group; must come down to one group

``OP`` is ``=``, ``!=``, ``=~`` or ``!~`` (regexes are RE2 and anchored, as in Prometheus); the
value may be quoted with ``"``, ``'`` or backticks. The metric name is the *sample* name as
exposed: ``app_requests_total``, ``app_request_seconds_bucket``, ``..._count``, ``..._sum``.
Anything else (functions, arithmetic, ranges, offsets) is refused with ``InvalidError``: use the
Prometheus provider for it.

Results follow the Prometheus provider: one series → ``Sample``; none → ``NoData``; several
→ ``NoData`` naming the count; NaN/Inf → ``NoData``. ``at`` cannot be honoured (a scrape is the
present), so the sample is stamped with the given ``at``. Unreachable endpoint, HTTP error or an
unparsable exposition → ``AdapterError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import httpx
import re2
from prometheus_client.parser import text_string_to_metric_families

from shipyard.adapters.metrics.promql import check_aware, finite, render
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.metrics import MetricQuery, NoData, Sample

__all__ = ["ScrapeProvider", "ScrapeQuery", "parse_query"]

_NAME = r"[A-Za-z_:][A-Za-z0-9_:]*"
_LABEL = r"[A-Za-z_][A-Za-z0-9_]*"
_STRING = r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`"
_MATCHER = re.compile(rf"\s*({_LABEL})\s*(=~|!~|!=|=)\s*({_STRING})\s*(,|$)", re.S)
_SELECTOR = re.compile(rf"\s*({_NAME})\s*(?:\{{(.*)\}})?\s*", re.S)
_SUM = re.compile(rf"\s*sum\s*(?:by\s*\(\s*((?:{_LABEL}\s*,?\s*)*)\)\s*)?\((.*)\)\s*", re.S)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}

Labels = Mapping[str, str]


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text[1:-1])


def _matcher(op: str, value: str) -> Callable[[str], bool]:
    if op in ("=~", "!~"):
        try:
            pattern = re2.compile(value)
        except Exception as exc:  # re2.error is not a subclass of anything useful
            raise InvalidError(f"bad regex {value!r}: {exc}") from exc
        if op == "=~":
            return lambda v: pattern.fullmatch(v) is not None
        return lambda v: pattern.fullmatch(v) is None
    if op == "=":
        return lambda v: v == value
    return lambda v: v != value


@dataclass(frozen=True, slots=True)
class ScrapeQuery:
    """A parsed query of the supported subset."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)
    aggregate: bool  # wrapped in sum
    by: tuple[str, ...] = ()

    def selects(self, labels: Labels) -> bool:
        return all(_matcher(op, value)(labels.get(label, "")) for label, op, value in self.matchers)


def parse_query(expression: str) -> ScrapeQuery:
    """Parse the supported subset (see the module docstring); InvalidError for anything else."""
    aggregate, inner = False, expression
    by: tuple[str, ...] = ()
    sum_match = _SUM.fullmatch(expression)
    if sum_match:
        aggregate, inner = True, sum_match.group(2)
        by = tuple(x.strip() for x in (sum_match.group(1) or "").split(",") if x.strip())
    selector = _SELECTOR.fullmatch(inner)
    if not selector or selector.group(1) in ("sum", "by"):
        raise InvalidError(
            f"the scrape provider answers only 'name{{matchers}}', 'sum(...)' and "
            f"'sum by (labels) (...)' of one metric; {expression!r} needs the prometheus provider"
        )
    matchers: list[tuple[str, str, str]] = []
    body = selector.group(2) or ""
    pos = 0
    while body[pos:].strip():
        m = _MATCHER.match(body, pos)
        if not m:
            raise InvalidError(f"cannot parse label matchers {{{body}}} in {expression!r}")
        label, op, value = m.group(1), m.group(2), _unquote(m.group(3))
        _matcher(op, value)  # validate regexes now
        matchers.append((label, op, value))
        pos = m.end()
        if m.group(4) != ",":
            break
    return ScrapeQuery(selector.group(1), tuple(matchers), aggregate, by)


class ScrapeProvider:
    kind: ClassVar[str] = "scrape"

    def __init__(self, url: str, client: httpx.Client | None = None, timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidError(f"scrape url must be an http(s) URL, got {url!r}")
        self.url = url
        self.timeout = timeout
        self._own_client = client is None
        self._client = client or httpx.Client(timeout=timeout)

    def query(self, q: MetricQuery, at: datetime) -> Sample | NoData:
        check_aware(at)
        expression = render(q)
        groups = self.vector(expression)
        if not groups:
            return NoData(expression, "query returned no series")
        if len(groups) > 1:
            return NoData(
                expression,
                f"query returned {len(groups)} series, expected one; aggregate it "
                "(e.g. sum(...)) or narrow the label matchers",
            )
        value = next(iter(groups.values()))
        if not finite(value):
            return NoData(expression, f"query returned {value}")
        return Sample(value, at, expression)

    def vector(self, q: MetricQuery | str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every result series of the query, keyed by its sorted labels."""
        parsed = parse_query(render(q))
        out: dict[tuple[tuple[str, str], ...], float] = {}
        for labels, value in self.samples(parsed.name):
            if not parsed.selects(labels):
                continue
            if not parsed.aggregate:
                out[tuple(sorted({"__name__": parsed.name, **labels}.items()))] = value
                continue
            key = tuple((label, labels.get(label, "")) for label in parsed.by)
            out[key] = out.get(key, 0.0) + value
        return out

    def samples(self, name: str) -> list[tuple[Labels, float]]:
        """Every sample called ``name`` in a fresh scrape."""
        text = self._scrape()
        try:
            return [
                (dict(s.labels), float(s.value))
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == name
            ]
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise AdapterError(
                f"scrape target at {self.url} exposes unparsable metrics: {exc}"
            ) from exc

    def ping(self) -> None:
        self._scrape()

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def _scrape(self) -> str:
        try:
            resp = self._client.get(self.url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise AdapterError(f"scrape target at {self.url} unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise AdapterError(
                f"scrape target at {self.url} answered HTTP {resp.status_code}: "
                f"{resp.text.strip()[:200]}"
            )
        return resp.text
