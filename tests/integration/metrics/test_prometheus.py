"""The Prometheus provider against a real Prometheus scraping the app in this process."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.adapters.metrics.prometheus import PrometheusProvider
from shipyard.analysis.slices import ArmCounters, build_slice
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.metrics import MetricQuery, NoData, Sample
from tests.integration.metrics.conftest import App, PrometheusServer, free_port, start_prometheus

pytestmark = pytest.mark.slow

ERROR_RATIO = (
    'sum(rate(app_requests_total{version="{version}",code=~"5.."}[5s]))'
    ' / sum(rate(app_requests_total{version="{version}"}[5s]))'
)
P50 = (
    "histogram_quantile(0.5, "
    'sum by (le) (rate(app_request_seconds_bucket{version="{version}"}[5s])))'
)


@pytest.fixture
def provider(prometheus: PrometheusServer) -> PrometheusProvider:
    return PrometheusProvider(prometheus.url)


def now() -> datetime:
    return datetime.now(UTC)


def test_ping(provider: PrometheusProvider) -> None:
    provider.ping()


@pytest.mark.parametrize(("version", "expected"), [("v1", 0.01), ("v2", 0.2)])
def test_error_ratio_per_version(
    provider: PrometheusProvider, version: str, expected: float
) -> None:
    result = provider.query(MetricQuery(ERROR_RATIO, {"version": version}), now())
    assert isinstance(result, Sample), result
    assert result.value == pytest.approx(expected, abs=0.01)
    assert f'version="{version}"' in result.query
    assert abs((result.at - now()).total_seconds()) < 5


def test_histogram_quantile(provider: PrometheusProvider) -> None:
    v1 = provider.query(MetricQuery(P50, {"version": "v1"}), now())
    v2 = provider.query(MetricQuery(P50, {"version": "v2"}), now())
    assert isinstance(v1, Sample) and isinstance(v2, Sample)
    assert 0.025 <= v1.value <= 0.05  # observed 30 ms: bucket (0.025, 0.05]
    assert 0.25 <= v2.value <= 0.5


def test_unknown_version_is_no_data(provider: PrometheusProvider) -> None:
    result = provider.query(MetricQuery(ERROR_RATIO, {"version": "v9"}), now())
    assert result == NoData(result.query, "query returned no series")


def test_several_series_are_no_data_naming_the_count(provider: PrometheusProvider) -> None:
    result = provider.query(MetricQuery("app_requests_total", {}), now())
    assert isinstance(result, NoData)
    assert "4 series" in result.reason
    one = provider.query(MetricQuery("sum(app_requests_total)", {}), now())
    assert isinstance(one, Sample)


def test_nan_is_no_data(provider: PrometheusProvider) -> None:
    result = provider.query(MetricQuery("vector(0) / vector(0)", {}), now())
    assert isinstance(result, NoData) and "nan" in result.reason.lower()


def test_scalar_answers_are_samples(provider: PrometheusProvider) -> None:
    result = provider.query(MetricQuery("scalar(sum(app_requests_total)) > bool 0", {}), now())
    assert isinstance(result, Sample)
    assert result.value == 1.0


def test_bad_promql_is_invalid_with_prometheus_text(provider: PrometheusProvider) -> None:
    with pytest.raises(InvalidError, match="parse error"):
        provider.query(MetricQuery('sum(app_requests_total{version="v1"}', {}), now())


def test_a_range_vector_is_invalid(provider: PrometheusProvider) -> None:
    with pytest.raises(InvalidError, match="range vector"):
        provider.query(MetricQuery("app_requests_total[5s]", {}), now())


def test_hostile_variables_stay_inside_the_string(provider: PrometheusProvider) -> None:
    # would close the string and widen the selector if pasted raw
    hostile = 'v1"} or app_requests_total{version=~".*'
    result = provider.query(MetricQuery(ERROR_RATIO, {"version": hostile}), now())
    assert isinstance(result, NoData) and result.reason == "query returned no series"
    regex = 'sum(app_requests_total{version=~"{version}"})'
    assert isinstance(provider.query(MetricQuery(regex, {"version": "v."}), now()), NoData)
    assert isinstance(provider.query(MetricQuery(regex, {"version": "v2"}), now()), Sample)


def test_queries_at_a_past_time(provider: PrometheusProvider, app: App) -> None:
    q = MetricQuery('sum(app_requests_total{version="{version}"})', {"version": "v1"})
    earlier = provider.query(q, now() - timedelta(seconds=2))
    later = provider.query(q, now())
    assert isinstance(earlier, Sample) and isinstance(later, Sample)
    assert earlier.value < later.value


def test_range_query(provider: PrometheusProvider) -> None:
    end = now()
    series = provider.range_query(
        MetricQuery(ERROR_RATIO, {"version": "v2"}), end - timedelta(seconds=3), end, 1.0
    )
    assert len(series) == 1
    assert len(series[0].points) >= 3
    assert all(v == pytest.approx(0.2, abs=0.02) for _, v in series[0].points if not math.isnan(v))


def snapshot(provider: PrometheusProvider, version: str, at: datetime) -> ArmCounters:
    def one(expr: str) -> float:
        result = provider.query(MetricQuery(expr, {"version": version}), at)
        assert isinstance(result, Sample), result
        return result.value

    buckets = provider.vector(
        MetricQuery(
            'sum by (le) (app_request_seconds_bucket{version="{version}"})', {"version": version}
        ),
        at,
    )
    return ArmCounters(
        one('sum(app_requests_total{version="{version}"})'),
        one('sum(app_requests_total{version="{version}",code="500"})'),
        {float(s.labels["le"]): s.value for s in buckets},
    )


def test_snapshots_make_a_slice_for_the_judges(provider: PrometheusProvider) -> None:
    t1 = now() - timedelta(seconds=1)
    t0 = t1 - timedelta(seconds=3)
    sl = build_slice(
        0.0,
        3.0,
        canary=(snapshot(provider, "v2", t0), snapshot(provider, "v2", t1)),
        baseline=(snapshot(provider, "v1", t0), snapshot(provider, "v1", t1)),
    )
    assert sl.canary.errors / sl.canary.requests == pytest.approx(0.2, abs=0.01)
    assert sl.baseline.errors / sl.baseline.requests == pytest.approx(0.01, abs=0.002)
    assert sl.canary.latencies and all(0.25 <= v <= 0.5 for v in sl.canary.latencies)
    assert sl.baseline.latencies and all(0.025 <= v <= 0.05 for v in sl.baseline.latencies)


def test_a_stopped_prometheus_is_an_adapter_error(tmp_path: Path) -> None:
    own = start_prometheus(tmp_path / "own", [])
    provider = PrometheusProvider(own.url, timeout=2)
    try:
        provider.ping()
        assert isinstance(provider.query(MetricQuery("vector(1)", {}), now()), Sample)
    finally:
        own.stop()
    with pytest.raises(AdapterError, match=f"prometheus at {own.url} unreachable"):
        provider.query(MetricQuery("vector(1)", {}), now())
    with pytest.raises(AdapterError, match="unreachable"):
        provider.ping()
    provider.close()


def test_nothing_listening_is_an_adapter_error() -> None:
    provider = PrometheusProvider(f"http://127.0.0.1:{free_port()}", timeout=1)
    started = time.monotonic()
    with pytest.raises(AdapterError, match="unreachable"):
        provider.query(MetricQuery("vector(1)", {}), now())
    assert time.monotonic() - started < 2
