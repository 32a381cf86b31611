"""Every kind of traffic change drops no request: real HAProxy, real backend processes, and
clients that send a request every millisecond (bounded) while the router moves traffic."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.ports.routers import Backend, RoutePlan, RouteRef, SegmentMatch
from tests.integration.routers.conftest import BACKEND

MAX_REQUESTS = 6000  # per client
MAX_SECONDS = 20.0
MATCHING = {"X-Segment": "beta", "x-shipyard-preview": "1", "Cookie": "canary=1"}


@dataclass
class Paced:
    """One keep-alive client, one request per millisecond at most, until stopped or bounded."""

    url: str
    headers: dict[str, str]
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # what failed, during which change
    during: str = "start"
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        next_at = time.monotonic()
        with httpx.Client(timeout=5, headers=self.headers) as client:
            for _ in range(MAX_REQUESTS):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    resp = client.get(self.url)
                except httpx.HTTPError as exc:
                    self.errors[type(exc).__name__] += 1
                    self.failures.append(f"{type(exc).__name__} during {self.during}")
                else:
                    self.statuses[resp.status_code] += 1
                    self.versions[resp.headers.get("X-Version", "?")] += 1
                    if not 200 <= resp.status_code < 300:
                        self.failures.append(f"{resp.status_code} during {self.during}")
                next_at += 0.001
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    next_at = time.monotonic()

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())


class Backends:
    """Stdlib versions as real processes; ``retire`` stops one, as the target does after a move."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str) -> Backend:
        proc = subprocess.Popen(
            [sys.executable, str(BACKEND), name], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        self.procs[name] = proc
        return Backend(name, (f"127.0.0.1:{int(proc.stdout.readline())}",))

    def retire(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.terminate()
        proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()

    def close(self) -> None:
        for name in list(self.procs):
            self.retire(name)


@pytest.fixture
def backends() -> Iterator[Backends]:
    made = Backends()
    yield made
    made.close()


@pytest.mark.slow
def test_abort_of_header_canary_and_every_other_change_drops_no_request(
    router: HaproxyRouter, route: RouteRef, backends: Backends
) -> None:
    v1, v2 = backends.start("v1"), backends.start("v2")
    header = SegmentMatch("header", "X-Segment", "beta")
    preview = SegmentMatch("header", "x-shipyard-preview")
    cookie = SegmentMatch("cookie", "canary", "1")
    router.apply(route, RoutePlan(stable=v1))
    url = f"http://127.0.0.1:{route.listen_port}/"
    clients = [Paced(url, MATCHING), Paced(url, {})]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for thread in threads:
        thread.start()

    def change(what: str, plan: RoutePlan, retire: str | None = None) -> None:
        for client in clients:
            client.during = what
        router.apply(route, plan)
        assert router.observe(route) == plan
        if retire is not None:
            time.sleep(0.02)  # the drain: requests already sent to it finish
            backends.retire(retire)
        time.sleep(0.15)

    try:
        time.sleep(0.1)
        change("weights 10%", RoutePlan(v1, v2, 10))
        change("weights 50%", RoutePlan(v1, v2, 50))
        change("header segment set", RoutePlan(v1, v2, 0, header))
        change("header segment cleared", RoutePlan(v1, v2, 0))
        change("header segment set again", RoutePlan(v1, v2, 0, header))
        change("abort of the header canary", RoutePlan(v1), retire="v2")
        v3 = backends.start("v3")
        change("cookie segment and mirror set", RoutePlan(v1, v3, 0, cookie, 50))
        change("mirror cleared", RoutePlan(v1, v3, 0, cookie))
        change("weights and mirror", RoutePlan(v1, v3, 20, None, 20))
        change("abort of a weighted, mirrored canary", RoutePlan(v1), retire="v3")
        v4 = backends.start("v4")
        change("blue-green preview", RoutePlan(v1, v4, 0, preview))
        change("blue-green switch", RoutePlan(v1, v4, 100, preview))
        change("blue-green promoted", RoutePlan(v4), retire="v1")
        v5 = backends.start("v5")
        change("canary 30%", RoutePlan(v4, v5, 30))
        change("promote of a weighted canary", RoutePlan(v5), retire="v4")
        v6 = backends.start("v6")
        change("segment canary", RoutePlan(v5, v6, 0, header))
        change("promote of a segment canary", RoutePlan(v6), retire="v5")
        v7 = backends.start("v7")
        change("segment canary again", RoutePlan(v6, v7, 0, header))
        v8 = backends.start("v8")
        change("canary replaced while it serves a segment", RoutePlan(v6, v8, 0, header), "v7")
        change("abort of the replacement", RoutePlan(v6), retire="v8")
    finally:
        for client in clients:
            client.stop.set()
        for thread in threads:
            thread.join(timeout=10)
    matching, plain = clients
    for client in clients:
        print(
            f"{client.headers or 'plain'}: {client.total} requests, {dict(client.statuses)}, "
            f"{dict(client.errors)}, versions {dict(client.versions)}"
        )
    assert (matching.failures, plain.failures) == ([], [])
    assert min(matching.total, plain.total) > 500  # paced at 1 ms; fewer on a busy machine
    assert {"v2", "v3", "v4", "v6", "v7", "v8"} <= set(matching.versions)  # the segments did route
    assert set(plain.versions) >= {"v1", "v2", "v4", "v5", "v6"}
