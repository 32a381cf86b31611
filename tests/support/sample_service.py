"""A dependency-free sample service to deploy in tests, the demo and canary runs.

Run: ``PORT=8123 python3 sample_service.py`` (stdlib only; this very file is what
``make_artifact`` packs, so it must never import anything outside the standard library).

- ``GET /``        → 200 JSON ``{"version", "candidate", "artifact_version"}``: ``version`` is
  ``$SHIPYARD_VERSION`` (set by the local target), else ``$SAMPLE_VERSION``, else the version
  packed in ``sample.json``; ``artifact_version`` is always the packed one; ``candidate`` is
  ``$SHIPYARD_CANDIDATE`` (``""`` when unset). With ``error_rate`` > 0 that share of answers is
  a 500 with ``{"error": ...}``.
- ``GET /healthz`` → 200 ``ok``, or 503 ``unhealthy`` when ``unhealthy`` is set. Never slow and
  never failing otherwise: a bad version passes its deploy health checks; only its traffic is bad.
- Every answer carries ``X-Version: <version>`` (the same value as the body's ``version``).

Versions for a rollout test: ``repo_files("v2")`` (healthy), ``repo_files("v3", error_rate=0.3)``
(30 % of ``/`` answers are 500s) or ``repo_files("v4", latency_ms=200)`` (every ``/`` answer 200 ms
late) are the files of a commit that builds that version (``tar czf ... sample_service.py
sample.json``); ``sample_config(...)`` is only the ``sample.json`` text.

Knobs come from ``sample.json`` beside this file (re-read whenever it changes, so a test may flip
a running instance's health) and are overridden by the environment: ``SAMPLE_ERROR_RATE``
(0..1), ``SAMPLE_LATENCY_MS`` (added to ``/`` only), ``SAMPLE_UNHEALTHY`` (1/true/yes).

In a target's settings use ``start: START`` (below): it runs this file with the test's own
interpreter, ``sys.executable``, because a bare ``python3`` may be another interpreter or a slow
pyenv shim.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shlex
import sys
import tarfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONFIG = "sample.json"
KNOBS = ("error_rate", "latency_ms", "unhealthy")


def _runnable_by_all(path: str) -> bool:
    """Deployed code runs as an unprivileged user when the tests run as root: a virtualenv's
    interpreter under /root (0700) is out of its reach."""
    real = Path(path).resolve()
    return all(os.stat(p).st_mode & 0o001 for p in (real, *real.parents))


PYTHON = next(
    (p for p in (sys.executable, "/usr/bin/python3") if Path(p).exists() and _runnable_by_all(p)),
    sys.executable,
)
START = f"{shlex.quote(PYTHON)} sample_service.py"  # the `start:` command of a target


def sample_config(version: str, **knobs: Any) -> str:
    """The ``sample.json`` text for ``version`` with knobs baked in; unknown knobs raise TypeError."""
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise TypeError(f"unknown sample knobs {unknown}; known: {list(KNOBS)}")
    rate = float(knobs.get("error_rate", 0) or 0)
    if not 0 <= rate <= 1:
        raise ValueError(f"error_rate is a share of requests within 0..1, got {rate}")
    if float(knobs.get("latency_ms", 0) or 0) < 0:
        raise ValueError("latency_ms cannot be negative")
    return json.dumps({"version": version, **knobs}, sort_keys=True)


def repo_files(version: str, **knobs: Any) -> dict[str, str]:
    """The files a commit needs to build ``version`` of this service (see ``sample_config``)."""
    return {
        "sample_service.py": Path(__file__).read_text(),
        CONFIG: sample_config(version, **knobs),
    }


def make_artifact(directory: Path, version: str, **knobs: Any) -> Path:
    """Pack this service and ``sample.json`` ({"version", **knobs}) into ``directory/app.tar.gz``.

    The archive is byte-for-byte reproducible (fixed mtimes and owners), so the same version and
    knobs always give the same digest. Unknown knobs raise TypeError.
    """
    files = {
        "sample_service.py": Path(__file__).read_bytes(),
        CONFIG: sample_config(version, **knobs).encode(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "app.tar.gz"
    with (
        out.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out


# -- the service ------------------------------------------------------------------------------
_cache: dict[str, Any] = {"mtime": None, "data": {}}


def _file_config() -> dict[str, Any]:
    path = HERE / CONFIG
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    if mtime != _cache["mtime"]:
        try:
            _cache["data"] = json.loads(path.read_text())
        except ValueError:  # half-written by a test: keep the previous knobs
            return dict(_cache["data"])
        _cache["mtime"] = mtime
    return dict(_cache["data"])


def knobs() -> dict[str, Any]:
    conf = _file_config()
    env = os.environ
    if "SAMPLE_ERROR_RATE" in env:
        conf["error_rate"] = float(env["SAMPLE_ERROR_RATE"])
    if "SAMPLE_LATENCY_MS" in env:
        conf["latency_ms"] = float(env["SAMPLE_LATENCY_MS"])
    if "SAMPLE_UNHEALTHY" in env:
        conf["unhealthy"] = env["SAMPLE_UNHEALTHY"].lower() in ("1", "true", "yes")
    return conf


def _version(conf: dict[str, Any]) -> str:
    env = os.environ
    return env.get("SHIPYARD_VERSION") or env.get("SAMPLE_VERSION") or str(conf.get("version", ""))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate sends: avoid the 40 ms stall

    def _send(self, status: int, body: bytes, content_type: str, conf: dict[str, Any]) -> None:
        self.send_response(status)
        self.send_header("X-Version", _version(conf))
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        conf = knobs()
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            if conf.get("unhealthy"):
                self._send(503, b"unhealthy", "text/plain", conf)
            else:
                self._send(200, b"ok", "text/plain", conf)
            return
        if path != "/":
            self._send(404, b'{"error": "not found"}', "application/json", conf)
            return
        latency = float(conf.get("latency_ms") or 0)
        if latency > 0:
            time.sleep(latency / 1000)
        if random.random() < float(conf.get("error_rate") or 0):
            self._send(500, b'{"error": "injected failure"}', "application/json", conf)
            return
        packed = str(conf.get("version", ""))
        body = {
            "version": _version(conf),
            "candidate": os.environ.get("SHIPYARD_CANDIDATE", ""),
            "artifact_version": packed,
        }
        self._send(200, json.dumps(body).encode(), "application/json", conf)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep the instance logs quiet under load


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops SYNs under a few dozen connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # connection resets from load generators and proxies are not news


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "0"))
    server = Server((host, port), Handler)
    print(f"sample service on {host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
