"""The router as a user meets it between rollouts: real server, real HAProxy, real processes.

The data dir is as deep as the one that used to leave the first deploy in ``promoting`` (router
sockets of 98 bytes, one past HAProxy's limit); a HAProxy killed with SIGKILL between rollouts
comes back by itself and serves; status shows the weights HAProxy really has.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.adapters.routers.haproxy.paths import SOCKET_PATH_MAX
from shipyard.ports.routers import RouteRef
from tests.support import sample_service
from tests.support.server import (
    ServerProcess,
    free_port,
    ok,
    rollout_status,
    running,
    sample_repo,
    sample_yaml,
)

PORT = free_port()
ROUTER_TAIL = "/environments/shop/production/router/master.sock"

CONFIG = sample_yaml(f"""\
environments:
  - name: production
    target: {{kind: local, start: "{sample_service.START}", health_timeout: 20}}
    router: {{port: {PORT}}}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 20
      - pause: {{}}
""")


@pytest.fixture
def deep_data_dir() -> Iterator[Path]:
    """A data dir whose router's master socket would be SOCKET_PATH_MAX + 1 bytes long."""
    base = Path(tempfile.mkdtemp(prefix="sy", dir="/tmp"))
    room = SOCKET_PATH_MAX + 1 - len(str(base)) - len("/") - len(ROUTER_TAIL)
    data = base / ("d" * room)
    assert len(str(data) + ROUTER_TAIL) == SOCKET_PATH_MAX + 1
    yield data
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def server(deep_data_dir: Path) -> Iterator[ServerProcess]:
    with running(deep_data_dir, {"production": PORT}, env={"SHIPYARD_LEASE_SECONDS": "3"}) as s:
        yield s


def until(what: str, done: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = done()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def serving() -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=2) as resp:
            return str(json.loads(resp.read())["candidate"])
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Running, not a zombie the server has yet to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


@pytest.mark.slow
def test_first_deploy_with_a_long_data_dir_and_a_killed_haproxy_coming_back(
    server: ServerProcess, deep_data_dir: Path, tmp_path: Path
) -> None:
    repo = sample_repo(tmp_path / "shop", CONFIG, "v1")
    ok(server.cli("project", "add", str(repo.path)))
    ok(server.cli("release", "cut", "shop"))
    first = ok(server.cli("deploy", "shop", "1.0.0-rc.1", "production", "--json")).json()
    promoted = until(
        "the first deploy is promoted",
        lambda: (r := rollout_status(server))["phase"] == "promoted" and r,
    )
    assert promoted["deployment_id"] == first["id"]
    assert serving() == "1.0.0-rc.1"
    router_dir = deep_data_dir / "environments/shop/production/router"
    assert "shipyard-haproxy-" in (router_dir / "haproxy.cfg").read_text()  # short sockets

    pid = int((router_dir / "haproxy.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # HAProxy dies between rollouts
    until("haproxy is gone", lambda: not alive(pid) or None, timeout=5)
    started = time.monotonic()
    until("haproxy serves again", lambda: serving() == "1.0.0-rc.1", timeout=20)
    print(f"HAProxy served again {time.monotonic() - started:.1f}s after SIGKILL")
    assert int((router_dir / "haproxy.pid").read_text()) != pid
    routing = rollout_status(server)["routing"]
    assert (routing["stable"], routing["canary"]) == ("1.0.0-rc.1", None)

    fix = repo.commit("fix: v2 (#2)", {"sample.json": json.dumps({"version": "v2"})})
    ok(server.cli("release", "pick", "shop", "1.0.0", fix))
    ok(server.cli("deploy", "shop", "1.0.0-rc.2", "production"))
    paused = until(
        "the canary waits at 20%", lambda: (r := rollout_status(server))["phase"] == "paused" and r
    )
    assert paused["routing"]["canary_weight"] == 20.0
    assert paused["routing"]["canary"] == "1.0.0-rc.2"
    ref = RouteRef("shop", "production", router_dir, PORT)
    HaproxyRouter().runtime(ref).command("set server be/b1 weight 256")  # an operator, by hand
    shown = rollout_status(server)
    assert shown["weight"] == 20.0  # what the rollout wants
    assert shown["routing"]["canary_weight"] == 50.0  # what HAProxy really does
    text = ok(server.cli("rollout", "status", "shop", "production")).out
    assert "router reads back: 1.0.0-rc.1 50% / 1.0.0-rc.2 50%" in text
    ok(server.cli("rollout", "abort", "shop", "production"))
    until("the abort is done", lambda: rollout_status(server)["phase"] == "rolled_back")
    assert rollout_status(server)["routing"]["canary"] is None
