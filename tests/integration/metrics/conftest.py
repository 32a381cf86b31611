"""A small instrumented app in the test process, and ONE real Prometheus per session scraping it.

The app serves a deterministic stream: every tick v1 serves 99 good + 1 failed request (1%),
v2 serves 4 good + 1 failed (20%); v1 answers in 30 ms, v2 in 300 ms. Prometheus scrapes it every
second; the fixture waits until a ``rate()`` over it has data (about 7 s on this machine).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

TICK = 0.02
HISTORY = 4.0  # seconds of data the tests may look back over
V1 = {"ok": 99, "err": 1, "latency": 0.03}
V2 = {"ok": 4, "err": 1, "latency": 0.3}
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class App:
    url: str  # the /metrics URL
    target: str  # host:port for a scrape config
    requests: Counter
    latency: Histogram
    ticks: int = 0

    def tick(self) -> None:
        for version, spec in (("v1", V1), ("v2", V2)):
            self.requests.labels(version=version, code="200").inc(spec["ok"])
            self.requests.labels(version=version, code="500").inc(spec["err"])
            self.latency.labels(version=version).observe(spec["latency"])
        self.ticks += 1


@pytest.fixture(scope="session")
def app() -> Iterator[App]:
    registry = CollectorRegistry()
    requests = Counter("app_requests", "Requests served", ["version", "code"], registry=registry)
    latency = Histogram(
        "app_request_seconds", "Latency", ["version"], buckets=BUCKETS, registry=registry
    )
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    port = server.server_address[1]
    instance = App(f"http://127.0.0.1:{port}/metrics", f"127.0.0.1:{port}", requests, latency)
    instance.tick()
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(TICK):
            instance.tick()

    ticker = threading.Thread(target=run, name="app-ticker", daemon=True)
    ticker.start()
    yield instance
    stop.set()
    ticker.join(timeout=5)
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_prometheus(directory: Path, targets: list[str]) -> PrometheusServer:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run scripts/setup (it installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    static = f"    static_configs:\n      - targets: [{', '.join(repr(t) for t in targets)}]\n"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: app\n" + (static if targets else "")
    )
    port = free_port()
    log = directory / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.01)
    server.stop()
    raise RuntimeError(f"prometheus not ready in 10 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def prometheus(app: App, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), [app.target])
    try:
        # tests look up to HISTORY seconds back: wait until a rate() has data that far back
        query = 'sum(rate(app_requests_total{version="v2"}[5s]))'
        deadline = time.monotonic() + 20
        while True:
            params = {"query": query, "time": f"{time.time() - HISTORY:.3f}"}
            resp = httpx.get(f"{server.url}/api/v1/query", params=params, timeout=2)
            if resp.json()["data"]["result"]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus has no rate() after 20 s")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()
