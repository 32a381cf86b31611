"""Metric provider kinds by name: the one place that knows which classes exist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.adapters.metrics.memory import MemoryProvider
from shipyard.adapters.metrics.prometheus import PrometheusProvider
from shipyard.adapters.metrics.scrape import ScrapeProvider
from shipyard.errors import InvalidError
from shipyard.ports.metrics import MetricProvider

__all__ = ["PROVIDERS", "make_provider"]

PROVIDERS: dict[str, type[MetricProvider]] = {
    cls.kind: cls for cls in (PrometheusProvider, ScrapeProvider, MemoryProvider)
}

# kind -> the option holding its URL
_ADDRESS = {"prometheus": "address", "scrape": "url"}


def make_provider(kind: str, options: Mapping[str, Any] | None = None) -> MetricProvider:
    """Build a provider from config: ``prometheus`` {address, timeout}, ``scrape`` {url, timeout},
    ``memory`` {}. Unknown kinds, unknown or missing options are ``InvalidError``."""
    opts = dict(options or {})
    if kind not in PROVIDERS:
        raise InvalidError(
            f"unknown metric provider {kind!r}; known: {', '.join(sorted(PROVIDERS))}"
        )
    if kind == "memory":
        if opts:
            raise InvalidError(f"the memory provider takes no options, got {sorted(opts)}")
        return MemoryProvider()
    key = _ADDRESS[kind]
    unknown = set(opts) - {key, "timeout"}
    if unknown:
        raise InvalidError(
            f"unknown {kind} provider option(s) {sorted(unknown)}; use {key}, timeout"
        )
    address = opts.get(key)
    if not isinstance(address, str) or not address:
        raise InvalidError(f"the {kind} provider needs {key}: an http(s) URL")
    timeout = opts.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise InvalidError(f"{kind} provider timeout must be a positive number of seconds")
    if kind == "prometheus":
        return PrometheusProvider(address, timeout=float(timeout))
    return ScrapeProvider(address, timeout=float(timeout))
