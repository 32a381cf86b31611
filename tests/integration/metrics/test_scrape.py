"""The scrape provider against the same app, without Prometheus."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shipyard.adapters.metrics.scrape import ScrapeProvider, parse_query
from shipyard.analysis.slices import ArmCounters, arm_delta
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.metrics import MetricQuery, NoData, Sample
from tests.integration.metrics.conftest import App, free_port

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def provider(app: App) -> ScrapeProvider:
    return ScrapeProvider(app.url)


def value(provider: ScrapeProvider, expression: str, **variables: str) -> float:
    result = provider.query(MetricQuery(expression, variables), AT)
    assert isinstance(result, Sample), result
    assert result.at == AT
    return result.value


def test_ping(provider: ScrapeProvider) -> None:
    provider.ping()


def test_one_series(provider: ScrapeProvider, app: App) -> None:
    before = app.ticks
    errors = value(provider, 'app_requests_total{version="{version}",code="500"}', version="v2")
    assert before <= errors <= app.ticks  # one failed v2 request per tick


def test_sum_and_ratio_of_two_queries(provider: ScrapeProvider) -> None:
    # scrape twice, so allow a few ticks between the two reads
    errors = value(
        provider, "sum(app_requests_total{version=~'{version}', code=~`5..`})", version="v2"
    )
    total = value(provider, 'sum(app_requests_total{version="{version}"})', version="v2")
    assert errors / total == pytest.approx(0.2, abs=0.01)


def test_sum_by_one_group_is_a_sample_several_are_no_data(provider: ScrapeProvider) -> None:
    assert value(provider, 'sum by (version) (app_requests_total{version="v1"})') > 0
    several = provider.query(MetricQuery("sum by (version) (app_requests_total)", {}), AT)
    assert isinstance(several, NoData) and "2 series" in several.reason


def test_several_series_without_sum_are_no_data(provider: ScrapeProvider) -> None:
    result = provider.query(MetricQuery("app_requests_total", {}), AT)
    assert isinstance(result, NoData) and "4 series" in result.reason


def test_unknown_version_is_no_data(provider: ScrapeProvider) -> None:
    result = provider.query(
        MetricQuery('sum(app_requests_total{version="{version}"})', {"version": "v9"}), AT
    )
    assert result == NoData('sum(app_requests_total{version="v9"})', "query returned no series")


def test_negative_matchers(provider: ScrapeProvider) -> None:
    ok = value(provider, 'sum(app_requests_total{version!="v1",code!~"5.."})')
    errors = value(provider, 'sum(app_requests_total{version!="v1",code=~"5.."})')
    assert ok / (ok + errors) == pytest.approx(0.8, abs=0.01)


def test_histogram_buckets_make_latencies(provider: ScrapeProvider) -> None:
    groups = provider.vector('sum by (le) (app_request_seconds_bucket{version="v2"})')
    buckets = {float(dict(key)["le"]): v for key, v in groups.items()}
    assert math.inf in buckets
    count = value(provider, 'app_request_seconds_count{version="v2"}')
    arm = arm_delta(None, ArmCounters(count, 0, buckets), max_latencies=50)
    assert len(arm.latencies) == min(50, round(count))
    assert all(0.25 <= v <= 0.5 for v in arm.latencies)


@pytest.mark.parametrize(
    "expression",
    [
        "rate(app_requests_total[5s])",
        "sum(rate(app_requests_total[5s]))",
        "app_requests_total / app_requests_total",
        'app_requests_total{version="v1"} offset 5m',
        "sum(app_requests_total) by (version)",
        'app_requests_total{version~"v1"}',
        'app_requests_total{version=~"("}',
    ],
)
def test_unsupported_expressions_are_invalid(provider: ScrapeProvider, expression: str) -> None:
    with pytest.raises(InvalidError):
        provider.query(MetricQuery(expression, {}), AT)


def test_parse_query() -> None:
    q = parse_query(r'sum by (le, version) (x_bucket{a="1\"2", b!~`.*z`})')
    assert (q.name, q.aggregate, q.by) == ("x_bucket", True, ("le", "version"))
    assert q.matchers == (("a", "=", '1"2'), ("b", "!~", ".*z"))
    assert q.selects({"a": '1"2', "b": "zy"}) and not q.selects({"a": '1"2', "b": "yz"})


def test_unreachable_target_is_an_adapter_error() -> None:
    provider = ScrapeProvider(f"http://127.0.0.1:{free_port()}/metrics", timeout=1)
    with pytest.raises(AdapterError, match="unreachable"):
        provider.query(MetricQuery("up", {}), AT)
    with pytest.raises(AdapterError):
        provider.ping()


class _Broken(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = (500, b"boom") if self.path == "/500" else (200, b"x{ 1\n")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def broken() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_http_error_and_garbage_are_adapter_errors(broken: str) -> None:
    with pytest.raises(AdapterError, match="HTTP 500"):
        ScrapeProvider(f"{broken}/500").ping()
    with pytest.raises(AdapterError, match="unparsable"):
        ScrapeProvider(f"{broken}/metrics").query(MetricQuery("x", {}), AT)
