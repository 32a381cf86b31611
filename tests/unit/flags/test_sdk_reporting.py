"""Cohort metrics leaving the app: batches that keep their id until accepted, SSE parsing, and
the Prometheus counters."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from shipyard.errors import AdapterError
from shipyard.sdk import FlagClient, PrometheusReporter, StaticFlagSource
from shipyard.sdk.metrics import MetricsSnapshot, report_body
from shipyard.sdk.sources import SseEvent, parse_sse
from tests.unit.flags.conftest import flag_state


class FlakyReporter:
    """Fails the first ``failures`` sends (as a lost answer would), records every attempt."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, MetricsSnapshot]] = []

    def send(self, batch_id: str, snapshot: MetricsSnapshot) -> None:
        self.sent.append((batch_id, snapshot))
        if self.failures:
            self.failures -= 1
            raise AdapterError("connection reset")


def _client(reporter: FlakyReporter) -> FlagClient:
    client = FlagClient(StaticFlagSource(flag_state()), refresh_interval=0, reporter=reporter)
    client.refresh()
    return client


def test_a_failed_batch_is_resent_with_the_same_id_and_newer_counts_wait() -> None:
    reporter = FlakyReporter(failures=1)
    client = _client(reporter)
    client.record_outcome("checkout", "error", {"userId": "1"})
    assert client.report() is False and client.last_report_error is not None
    client.record_outcome("checkout", "error", {"userId": "2"})  # after the failed send
    assert client.report() is True and client.last_report_error is None
    (first, snap1), (retry, snap2) = reporter.sent
    assert first == retry and snap1 == snap2  # the same batch, so the server counts it once
    assert client.report() is True
    assert reporter.sent[2][0] != first  # the newer count goes in a new batch
    assert sum(sum(v.values()) for v in reporter.sent[2][1].outcomes["checkout"].values()) == 1
    assert client.report() is True and len(reporter.sent) == 3  # nothing left: nothing sent


def test_close_sends_what_is_left() -> None:
    reporter = FlakyReporter(failures=0)
    client = _client(reporter)
    client.is_enabled("checkout", {"userId": "1"})
    client.close()
    assert len(reporter.sent) == 1


def test_report_body_is_what_the_server_takes() -> None:
    snap = MetricsSnapshot(
        exposures={"f": {"enabled": 3, "disabled": 5}},
        outcomes={"f": {"enabled": {"error": 1}}},
        outcome_values={"f": {"enabled": {"error": 9.5}}},
    )
    assert report_body(snap) == {
        "f": {"enabled": {"exposures": 3, "outcomes": {"error": 1}}, "disabled": {"exposures": 5}}
    }


def test_prometheus_reporter_counts_by_flag_and_variant() -> None:
    registry = CollectorRegistry()
    reporter = PrometheusReporter(registry=registry)
    snap = MetricsSnapshot(exposures={"f": {"blue": 2}}, outcomes={"f": {"blue": {"error": 1}}})
    reporter.send("any", snap)
    reporter.send("any", snap)
    get = registry.get_sample_value
    assert get("shipyard_flag_exposures_total", {"flag": "f", "variant": "blue"}) == 4
    labels = {"flag": "f", "variant": "blue", "outcome": "error"}
    assert get("shipyard_flag_outcomes_total", labels) == 2


@pytest.mark.parametrize(
    ("lines", "events"),
    [
        (["event: state", "id: 3", "data: {}", ""], [SseEvent("state", "{}", "3")]),
        ([": keep-alive", "", "data: a", "data: b", ""], [SseEvent("message", "a\nb", None)]),
        (["event: state", "data: {}"], []),  # not terminated: not dispatched
    ],
)
def test_parse_sse(lines: list[str], events: list[SseEvent]) -> None:
    assert list(parse_sse(lines)) == events
