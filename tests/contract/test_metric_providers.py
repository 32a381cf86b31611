"""What every metric provider promises (ports.metrics.MetricProvider), checked on each kind.

All of them answer the same small world: a gauge ``contract_value`` with the series
``version="v1"`` = 42, ``version="v2"`` = 0.5 and ``version="nan"`` = NaN.

- memory: told that world (values keyed by the rendered expression), ``down`` when unreachable.
- scrape: reads a ``/metrics`` endpoint served in the test process from a registry holding it.
- prometheus: one real Prometheus for the module scraping that endpoint every second (``slow``:
  its first sample takes about 6 s).

The contract: a query returns the sample, stamped with the time asked about and naming the
expression sent; no data (no series, NaN) is a ``NoData`` value, never an error; a variable
cannot change the query; an unreachable provider raises AdapterError from ``query`` and ``ping``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from shipyard.adapters.metrics.memory import MemoryProvider
from shipyard.adapters.metrics.prometheus import PrometheusProvider
from shipyard.adapters.metrics.promql import render
from shipyard.adapters.metrics.scrape import ScrapeProvider
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.metrics import MetricProvider, MetricQuery, NoData, Sample
from tests.integration.metrics.conftest import PrometheusServer, free_port, start_prometheus

KINDS = ["memory", "scrape", pytest.param("prometheus", marks=pytest.mark.slow)]
WORLD = {"v1": 42.0, "v2": 0.5, "nan": math.nan}
VALUE = MetricQuery('sum(contract_value{version="{version}"})', {"version": "v1"})


def _query(version: str) -> MetricQuery:
    return MetricQuery(VALUE.expression, {"version": version})


@dataclass
class Harness:
    kind: str
    provider: MetricProvider
    unreachable: Callable[[], MetricProvider]  # the same kind, with nobody answering


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The world as a /metrics endpoint (host:port), served from this process."""
    registry = CollectorRegistry()
    gauge = Gauge("contract_value", "The contract's world", ["version"], registry=registry)
    for version, value in WORLD.items():
        gauge.labels(version=version).set(value)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def prometheus(
    endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), [endpoint])
    try:
        deadline = time.monotonic() + 20
        while True:
            # at a whole second, as the tests ask (_now): the first scrape may be later than that
            params = {"query": render(VALUE), "time": str(int(time.time()))}
            resp = httpx.get(f"{server.url}/api/v1/query", params=params, timeout=2)
            if resp.json()["data"]["result"]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus scraped nothing in 20 s")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def _nobody() -> str:
    return f"http://127.0.0.1:{free_port()}"


def _memory_down() -> MemoryProvider:
    down = MemoryProvider()
    down.down = True
    return down


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        memory = MemoryProvider({render(_query(v)): value for v, value in WORLD.items()})
        h = Harness("memory", memory, _memory_down)
    elif request.param == "scrape":
        url = f"http://{request.getfixturevalue('endpoint')}/metrics"
        h = Harness("scrape", ScrapeProvider(url), lambda: ScrapeProvider(_nobody(), timeout=1))
    else:
        server: PrometheusServer = request.getfixturevalue("prometheus")
        h = Harness(
            "prometheus",
            PrometheusProvider(server.url),
            lambda: PrometheusProvider(_nobody(), timeout=1),
        )
    yield h
    h.provider.close()  # type: ignore[attr-defined]


def _now() -> datetime:
    return datetime.fromtimestamp(int(time.time()), UTC)  # whole seconds: every API keeps them


def test_declares_its_kind(harness: Harness) -> None:
    assert harness.provider.kind == harness.kind


def test_a_query_returns_the_sample_at_the_time_asked(harness: Harness) -> None:
    at = _now()

    result = harness.provider.query(VALUE, at)

    assert isinstance(result, Sample), result
    assert result.value == 42.0
    assert result.at == at
    assert result.query == render(VALUE) == 'sum(contract_value{version="v1"})'


def test_each_variable_value_selects_its_own_series(harness: Harness) -> None:
    result = harness.provider.query(_query("v2"), _now())

    assert isinstance(result, Sample) and result.value == 0.5


@pytest.mark.parametrize(
    "version",
    ["v9", "nan", 'v1"}) or vector(1) #', "v1|v2", ".*"],
    ids=["unknown version", "NaN", "a quote in the value", "an alternation", "a wildcard"],
)
def test_no_data_is_a_value_not_an_error(harness: Harness, version: str) -> None:
    """Unknown versions, NaN, and values that try to change the query all come back NoData."""
    q = _query(version)

    result = harness.provider.query(q, _now())

    assert isinstance(result, NoData), result
    assert result.query == render(q)
    assert result.reason and "\n" not in result.reason


def test_an_unknown_placeholder_is_refused_before_asking(harness: Harness) -> None:
    with pytest.raises(InvalidError, match="verison"):
        harness.provider.query(MetricQuery("contract_value{version='{verison}'}", {}), _now())


def test_ping_a_reachable_provider(harness: Harness) -> None:
    harness.provider.ping()


def test_an_unreachable_provider_raises_adapter_error(harness: Harness) -> None:
    provider = harness.unreachable()
    try:
        started = time.monotonic()
        with pytest.raises(AdapterError):
            provider.query(VALUE, _now())
        with pytest.raises(AdapterError):
            provider.ping()
        assert time.monotonic() - started < 3  # within its timeout, not hanging
    finally:
        provider.close()  # type: ignore[attr-defined]


def test_the_provider_stays_usable_after_no_data(harness: Harness) -> None:
    at = _now()
    assert isinstance(harness.provider.query(_query("v9"), at), NoData)

    result = harness.provider.query(VALUE, at)

    assert isinstance(result, Sample) and result.value == 42.0


def test_a_time_without_a_timezone_is_refused_before_asking(harness: Harness) -> None:
    """Prometheus cannot place a naive time; its twins must not accept what it refuses."""
    with pytest.raises(InvalidError, match="timezone"):
        harness.provider.query(VALUE, datetime(2026, 11, 22, 12, 0))  # noqa: DTZ001
