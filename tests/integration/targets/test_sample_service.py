"""The sample service other tests deploy: its answers and knobs, run straight from its artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters.targets.local import free_port
from tests.support.sample_service import make_artifact


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


class Running:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(
            [sys.executable, "sample_service.py"],
            cwd=workdir,
            env={**os.environ, "PORT": port, **env},
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                fetch(self.url + "/healthz")
                return
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Running] = []

    def start(version: str = "1.0.0", env: dict[str, str] | None = None, **knobs: Any) -> Running:
        workdir = tmp_path / f"run{len(started)}"
        with tarfile.open(make_artifact(tmp_path / f"a{len(started)}", version, **knobs)) as tar:
            tar.extractall(workdir, filter="data")
        started.append(Running(workdir, env or {}))
        return started[-1]

    yield start
    for r in started:
        r.stop()


def test_artifact_is_reproducible_and_checks_its_knobs(tmp_path: Path) -> None:
    one = make_artifact(tmp_path / "one", "1.0.0", latency_ms=5)
    two = make_artifact(tmp_path / "two", "1.0.0", latency_ms=5)
    assert one.name == "app.tar.gz" and one.read_bytes() == two.read_bytes()
    assert make_artifact(tmp_path / "three", "1.0.1").read_bytes() != one.read_bytes()
    with tarfile.open(one) as tar:
        assert sorted(tar.getnames()) == ["sample.json", "sample_service.py"]
    with pytest.raises(TypeError, match="unknown sample knobs"):
        make_artifact(tmp_path / "bad", "1.0.0", colour="red")


def test_answers_its_version_and_candidate(serve: Any) -> None:
    plain = serve("1.0.0", env={"SHIPYARD_VERSION": "", "SHIPYARD_CANDIDATE": ""})
    assert json.loads(fetch(plain.url)[1]) == {
        "version": "1.0.0",
        "candidate": "",
        "artifact_version": "1.0.0",
    }
    deployed = serve("1.0.0", env={"SHIPYARD_VERSION": "2.0.0", "SHIPYARD_CANDIDATE": "c7"})
    assert json.loads(fetch(deployed.url)[1]) == {
        "version": "2.0.0",
        "candidate": "c7",
        "artifact_version": "1.0.0",
    }
    assert fetch(deployed.url + "/healthz") == (200, b"ok")
    assert fetch(deployed.url + "/nope")[0] == 404


def test_knobs_from_the_artifact_and_the_environment(serve: Any) -> None:
    failing = serve(error_rate=1.0, unhealthy=True)
    assert fetch(failing.url)[0] == 500
    assert fetch(failing.url + "/healthz") == (503, b"unhealthy")

    overridden = serve(error_rate=1.0, env={"SAMPLE_ERROR_RATE": "0", "SAMPLE_LATENCY_MS": "200"})
    began = time.monotonic()
    assert fetch(overridden.url)[0] == 200
    assert time.monotonic() - began >= 0.2


def test_health_follows_a_rewritten_sample_json(serve: Any) -> None:
    running = serve()
    assert fetch(running.url + "/healthz")[0] == 200
    config = running.workdir / "sample.json"
    config.write_text(json.dumps({"version": "1.0.0", "unhealthy": True}))
    os.utime(config, ns=(time.time_ns(), time.time_ns() + 1_000_000))  # a new mtime, surely
    assert fetch(running.url + "/healthz")[0] == 503
