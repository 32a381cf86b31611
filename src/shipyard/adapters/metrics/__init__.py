"""Metric providers behind ports.metrics.MetricProvider: Prometheus, a direct scrape, memory."""
