"""Client library for applications: evaluate Shipyard flags in-process.

    provider = ShipyardProvider.from_api("https://shipyard.example", "shop", "prod", token)
    openfeature.api.set_provider(provider)

or without OpenFeature: ``FlagClient(HttpFlagSource(...)).start()`` then ``client.is_enabled``.
"""

from shipyard.sdk.client import FlagClient
from shipyard.sdk.context import to_unleash_context
from shipyard.sdk.metrics import CohortMetrics, MetricsSnapshot
from shipyard.sdk.provider import ShipyardProvider
from shipyard.sdk.reporting import HttpMetricsReporter, MetricsReporter, PrometheusReporter
from shipyard.sdk.sources import (
    NOT_MODIFIED,
    FetchResult,
    FileFlagSource,
    FlagSource,
    HttpFlagSource,
    SseFlagSource,
    StaticFlagSource,
)

__all__ = [
    "NOT_MODIFIED",
    "CohortMetrics",
    "FetchResult",
    "FileFlagSource",
    "FlagClient",
    "FlagSource",
    "HttpFlagSource",
    "HttpMetricsReporter",
    "MetricsReporter",
    "MetricsSnapshot",
    "PrometheusReporter",
    "ShipyardProvider",
    "SseFlagSource",
    "StaticFlagSource",
    "to_unleash_context",
]
