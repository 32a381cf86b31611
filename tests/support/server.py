"""A real `shipyard serve` process for end-to-end tests, and a way to run the real CLI against it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.adapters.targets.local import LocalTarget
from shipyard.ports.routers import RouteRef


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(
        self, data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.extra_env = env or {}
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = os.environ | {"PYTHONUNBUFFERED": "1", "NO_COLOR": "1"} | self.extra_env
        env.pop("SHIPYARD_TOKEN", None)
        if self.database_url:
            env["SHIPYARD_DATABASE_URL"] = self.database_url
        cmd = [sys.executable, "-m", "shipyard.cli.main", "serve", "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.proc.stdout.readline()
            if not text:
                raise RuntimeError("server exited:\n" + "".join(self.output))
            self.output.append(text)
            if text.startswith("shy_"):
                self.admin_token = text.strip()
            if text.startswith("Shipyard on http"):
                break
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not become ready:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()

    def cli(self, *args: str, token: str | None = None, cwd: Path | None = None) -> CliResult:
        env = os.environ | {
            "SHIPYARD_URL": self.url,
            "SHIPYARD_TOKEN": self.admin_token if token is None else token,
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        done = subprocess.run(
            [sys.executable, "-m", "shipyard.cli.main", *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, out={self.out[-2000:]!r}, err={self.err[-2000:]!r})"


def ok(result: CliResult) -> CliResult:
    """The command succeeded (the assertion shows its output when it did not)."""
    assert result.code == 0, result
    return result


def stop_environments(data_dir: Path, project: str, router_ports: Mapping[str, int]) -> None:
    """Stop what a test's server left running per environment: its HAProxy and instances."""
    target = LocalTarget()
    for env, port in router_ports.items():
        env_dir = data_dir / "environments" / project / env
        HaproxyRouter().stop(RouteRef(project, env, env_dir / "router", port))
        target.stop_all(env_dir)
    target.close()
