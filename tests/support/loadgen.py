"""A bounded load generator for 127.0.0.1: N requests or T seconds, whichever comes first.

``run(url, requests=400, concurrency=8)`` returns a ``LoadResult``; ``Load(url, seconds=5)`` runs
in the background (``with Load(...) as load: ...; result = load.stop()``) so a test can change
things while traffic flows. Each worker thread keeps one keep-alive ``httpx.Client``. Which
version answered comes from a response header (``X-Version`` by default), else the body.
Bounds are hard: at most ``MAX_REQUESTS`` requests and ``MAX_SECONDS`` seconds, never unbounded.

Failures are told apart: ``proxy_failed`` counts what the move of traffic broke (connection
errors, and 5xx answers without a version header: the proxy's own 502/503/504), ``app_failed``
the 5xx a version sent itself (``version_5xx`` per version). ``latencies`` holds the seconds of
every answer per version; ``latency(0.99, "v2")`` is a percentile.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

MAX_REQUESTS = 100_000
MAX_SECONDS = 60.0


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)  # answers below 500, per version
    version_5xx: Counter[str] = field(default_factory=Counter)  # 5xx a version sent itself
    errors: Counter[str] = field(default_factory=Counter)  # connection errors by exception name
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def failed(self) -> int:
        """Connection errors plus 5xx answers."""
        return sum(self.errors.values()) + sum(n for s, n in self.statuses.items() if s >= 500)

    @property
    def app_failed(self) -> int:
        """5xx answers that carry a version header: the version's own failures."""
        return sum(self.version_5xx.values())

    @property
    def proxy_failed(self) -> int:
        """Connection errors and 5xx without a version header (the proxy's 502/503/504)."""
        return self.failed - self.app_failed

    def latency(self, q: float, version: str | None = None) -> float:
        """The ``q`` quantile (0..1, nearest rank) of the answers' seconds; all versions if None."""
        pool = sorted(
            s for v, values in self.latencies.items() if version in (None, v) for s in values
        )
        if not pool:
            return math.nan
        return pool[min(len(pool) - 1, max(0, math.ceil(q * len(pool)) - 1))]

    def share(self, version: str) -> float:
        answered = sum(self.versions.values())
        return self.versions[version] / answered if answered else 0.0


class Load:
    """Background load; ``stop()`` joins the workers and returns what they saw."""

    def __init__(
        self,
        url: str,
        *,
        requests: int | None = None,
        seconds: float | None = None,
        concurrency: int = 8,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        version_header: str = "X-Version",
        timeout: float = 5.0,
    ) -> None:
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"load only goes to 127.0.0.1, not {host}")
        if requests is None and seconds is None:
            raise ValueError("give requests=N or seconds=T: load is always bounded")
        self.url = url
        self.limit = min(requests if requests is not None else MAX_REQUESTS, MAX_REQUESTS)
        self.seconds = min(seconds if seconds is not None else MAX_SECONDS, MAX_SECONDS)
        self.concurrency = max(1, concurrency)
        self.headers = dict(headers or {})
        if cookies:
            self.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self.version_header = version_header
        self.timeout = timeout
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._issued = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def _take(self) -> bool:
        with self._lock:
            if self._issued >= self.limit or self._stop.is_set():
                return False
            if time.monotonic() - self._started > self.seconds:
                return False
            self._issued += 1
            return True

    def _worker(self) -> None:
        with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
            while self._take():
                started = time.perf_counter()
                try:
                    resp = client.get(self.url)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.result.errors[type(exc).__name__] += 1
                    continue
                took = time.perf_counter() - started
                header = resp.headers.get(self.version_header)
                version = header or resp.text.strip()[:40]
                with self._lock:
                    self.result.statuses[resp.status_code] += 1
                    if resp.status_code < 500:
                        self.result.versions[version] += 1
                    elif header:
                        self.result.version_5xx[header] += 1
                    if header or resp.status_code < 500:
                        self.result.latencies[version].append(took)

    def start(self) -> Load:
        self._started = time.monotonic()
        for _ in range(self.concurrency):
            thread = threading.Thread(target=self._worker, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def join(self) -> LoadResult:
        for thread in self._threads:
            thread.join(timeout=self.seconds + self.timeout + 5)
        self.result.seconds = time.monotonic() - self._started
        return self.result

    def stop(self) -> LoadResult:
        self._stop.set()
        return self.join()

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run(
    url: str,
    *,
    requests: int = 200,
    concurrency: int = 8,
    seconds: float = 10.0,
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
) -> LoadResult:
    """Send ``requests`` requests (``seconds`` at most) and wait for all of them."""
    load = Load(
        url,
        requests=requests,
        seconds=seconds,
        concurrency=concurrency,
        headers=headers,
        cookies=cookies,
    )
    return load.start().join()
