"""A real `shipyard serve` process for end-to-end tests, and a way to run the real CLI against it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.adapters.targets.local import LocalTarget
from shipyard.ports.routers import RouteRef
from tests.support import sample_service
from tests.support.gitrepo import GitRepo
from tests.support.reachable import pass_through

# the shipyard.yaml lines every sample-service test shares (see sample_yaml)
SAMPLE_SHOP = """\
project: shop
versioning: {initial: 1.0.0}
build:
  command: tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" sample_service.py sample.json
  artifacts: ["*.tar.gz"]
"""


def sample_yaml(rest: str) -> str:
    """The sample shop's shipyard.yaml: ``SAMPLE_SHOP`` then ``rest``, the test's own
    environments, policies and checks (what its assertions depend on, so it stays in the test)."""
    return SAMPLE_SHOP + rest


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
        # deployed files beside the data dir, in the test's folder (not /var/lib as for root)
        env.setdefault("SHIPYARD_WORK_DIR", str(self.data_dir.parent / "work"))
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        pass_through(self.data_dir.parent)  # the work dir's parents, for the app user
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

    def cli(
        self, *args: str, token: str | None = None, cwd: Path | None = None, stdin: str = ""
    ) -> CliResult:
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
            input=stdin,
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


def stop_environments(data_dir: Path, project: str, router_ports: Mapping[str, int | None]) -> None:
    """Stop what a test's server left running per environment: its HAProxy and instances.

    An environment mapped to ``None`` has no router: only its instances are stopped."""
    target = LocalTarget()
    for env, port in router_ports.items():
        env_dir = data_dir / "environments" / project / env
        if port is not None:
            HaproxyRouter().stop(RouteRef(project, env, env_dir / "router", port))
        target.stop_all(env_dir)
    target.close()


@contextmanager
def running(
    data_dir: Path,
    environments: Mapping[str, int | None],
    *,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    project: str = "shop",
) -> Iterator[ServerProcess]:
    """A started server; afterwards it is stopped, then what it left running in ``environments``
    (environment -> router port, or ``None`` without a router; see ``stop_environments``)."""
    server = ServerProcess(data_dir, database_url, env=env).start()
    try:
        yield server
    finally:
        server.stop()
        stop_environments(data_dir, project, environments)


def sample_repo(
    path: Path, config: str, version: str = "v1", message: str = "feat: shop service (#1)"
) -> GitRepo:
    """A repository of the sample service: one commit with ``config`` as its shipyard.yaml and
    the service's files serving ``version`` (see ``sample_service.repo_files``)."""
    repo = GitRepo(path)
    repo.commit(message, {"shipyard.yaml": config, **sample_service.repo_files(version)})
    return repo


def until(
    api: httpx.Client, path: str, done: Callable[[Any], bool], timeout: float
) -> dict[str, Any]:
    """GET ``path`` every 0.1 s until ``done(body)``; fail with the last body after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.get(path).raise_for_status().json()
        if done(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never got there: {body}")
        time.sleep(0.1)


def rollout_status(server: ServerProcess, environment: str = "production") -> dict[str, Any]:
    """``shipyard rollout status shop <environment> --json``, which must succeed."""
    return ok(server.cli("rollout", "status", "shop", environment, "--json")).json()  # type: ignore[no-any-return]
