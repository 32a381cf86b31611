"""Where the SDK sends its cohort counts: the Shipyard server, or Prometheus counters.

A ``router: flag`` rollout judges the flag's on and off users by what the app saw. The client
drains its counters every ``report_interval`` and hands the batch to a reporter:

- ``HttpMetricsReporter`` posts it to ``.../flags/metrics`` with the app's token. Each batch has
  an id the client picks once and keeps until the server acknowledges it, so a retry after a
  lost answer is counted once.
- ``PrometheusReporter`` adds it to ``prometheus_client`` counters labelled ``flag``,
  ``variant`` (and ``outcome``), for apps whose metrics Prometheus already scrapes; a
  prometheus check then selects the cohort with ``variant``.
"""

from __future__ import annotations

from typing import Protocol

import httpx
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from shipyard.errors import AdapterError
from shipyard.sdk.metrics import MetricsSnapshot, report_body
from shipyard.sdk.sources import flags_url

__all__ = ["HttpMetricsReporter", "MetricsReporter", "PrometheusReporter"]


class MetricsReporter(Protocol):
    """Takes one batch of counts; raises ``ShipyardError`` when it could not (the client retries
    the same batch, with the same id, later)."""

    def send(self, batch_id: str, snapshot: MetricsSnapshot) -> None: ...


class HttpMetricsReporter:
    """``POST {base_url}/api/v1/projects/{project}/environments/{environment}/flags/metrics``."""

    def __init__(
        self,
        base_url: str,
        project: str,
        environment: str,
        token: str,
        *,
        app_name: str = "",
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = flags_url(base_url, project, environment, "metrics")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._app = app_name
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def send(self, batch_id: str, snapshot: MetricsSnapshot) -> None:
        body = {"batch_id": batch_id, "app_name": self._app, "flags": report_body(snapshot)}
        try:
            response = self._client.post(self.url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise AdapterError(f"flag metrics report failed: {exc}") from exc
        if response.status_code != 200:
            raise AdapterError(
                f"flag metrics report failed: HTTP {response.status_code} from {self.url}: "
                f"{response.text[:200]}"
            )

    def close(self) -> None:
        self._client.close()


class PrometheusReporter:
    """Cohort counts as Prometheus counters (``<prefix>_exposures_total{flag,variant}``,
    ``<prefix>_outcomes_total{flag,variant,outcome}``) in ``registry``."""

    def __init__(
        self, *, registry: CollectorRegistry = REGISTRY, prefix: str = "shipyard_flag"
    ) -> None:
        self.exposures = Counter(
            f"{prefix}_exposures",
            "flag evaluations per flag and variant (cohort)",
            ["flag", "variant"],
            registry=registry,
        )
        self.outcomes = Counter(
            f"{prefix}_outcomes",
            "outcomes (error, purchase, ...) per flag, variant and outcome",
            ["flag", "variant", "outcome"],
            registry=registry,
        )

    def send(self, batch_id: str, snapshot: MetricsSnapshot) -> None:
        for flag, variants in snapshot.exposures.items():
            for variant, n in variants.items():
                self.exposures.labels(flag, variant).inc(n)
        for flag, happened in snapshot.outcomes.items():
            for variant, events in happened.items():
                for event, k in events.items():
                    self.outcomes.labels(flag, variant, event).inc(k)
