"""Bounded demo traffic to the production router on 127.0.0.1: users the canary is judged on.

A canary analysis needs live requests, so the demo plays users: a few threads, paced to
``rate`` requests per second in all (the machine also runs the server, HAProxy and the
instances), a third of them logged in (a ``session`` cookie). Always bounded by a request count
and a duration, whichever ends first, and only ever sent to 127.0.0.1. Answers are counted per
``X-Version``; a 5xx without that header (or a connection error) is the proxy's, not a version's.

Stdlib ``http.client`` and not httpx: the CLI speaks HTTP to Shipyard only in ``cli/client.py``;
this talks to the sample service.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

MAX_REQUESTS = 20_000
MAX_SECONDS = 120.0


@dataclass
class Seen:
    """What the users saw so far: answers below 500 and 5xx per version, and proxy failures."""

    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    proxy_failed: int = 0

    @property
    def total(self) -> int:
        return sum(self.ok.values()) + sum(self.failed.values()) + self.proxy_failed

    def copy(self) -> Seen:
        return Seen(Counter(self.ok), Counter(self.failed), self.proxy_failed)


class Traffic:
    """``with Traffic(port) as t: ...`` sends load in the background until the block ends."""

    def __init__(
        self,
        port: int,
        *,
        rate: float = 80.0,
        seconds: float = 60.0,
        requests: int = 10_000,
        workers: int = 4,
    ) -> None:
        self.port = port
        self.seconds = min(seconds, MAX_SECONDS)
        self.limit = min(requests, MAX_REQUESTS)
        self.workers = max(1, workers)
        self.gap = self.workers / rate  # each worker's pause between its requests
        self._seen = Seen()
        self._lock = threading.Lock()
        self._issued = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._deadline = 0.0

    def seen(self) -> Seen:
        with self._lock:
            return self._seen.copy()

    def _take(self) -> int | None:
        """The number of the next request, or None once a bound is reached."""
        with self._lock:
            if self._stop.is_set() or self._issued >= self.limit:
                return None
            if time.monotonic() > self._deadline:
                return None
            self._issued += 1
            return self._issued

    def _one(self, conn: http.client.HTTPConnection, number: int) -> None:
        headers = {"Cookie": f"session=user{number}"} if number % 3 == 0 else {}
        try:
            conn.request("GET", "/", headers=headers)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()  # reconnects on the next request
            with self._lock:
                self._seen.proxy_failed += 1
            return
        version = resp.getheader("X-Version")
        with self._lock:
            if version is None and resp.status >= 500:
                self._seen.proxy_failed += 1
            elif resp.status >= 500:
                self._seen.failed[str(version)] += 1
            else:
                self._seen.ok[str(version)] += 1

    def _worker(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            while (number := self._take()) is not None:
                started = time.monotonic()
                self._one(conn, number)
                self._stop.wait(max(0.0, self.gap - (time.monotonic() - started)))
        finally:
            conn.close()

    def start(self) -> Traffic:
        self._deadline = time.monotonic() + self.seconds
        for i in range(self.workers):
            thread = threading.Thread(target=self._worker, name=f"demo-traffic-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> Seen:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        return self.seen()

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
