"""Recovering from an abort as a user does: `rollout abort --wait`, then `rollout retry`.

Real server, real HAProxy, real processes. Before, an aborted rollout could not be run again;
now `retry` deploys the same candidate with the same policy from its first step.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import sample_service
from tests.support.gitrepo import GitRepo
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

CONFIG = sample_yaml(f"""\
environments:
  - name: production
    target: {{kind: local, start: "{sample_service.START}", instances: 1, health_timeout: 20}}
    router: {{port: {PORT}}}
    policy: held
policies:
  held:
    steps:
      - set_weight: 20
      - pause: {{}}
""")

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running(tmp_path / "data", {"production": PORT}, env={"SHIPYARD_LEASE_SECONDS": "3"}) as s:
        yield s


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return sample_repo(tmp_path / "shop", CONFIG, "v1")


def until(
    server: ServerProcess, what: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = rollout_status(server)
        if what(r):
            return r
        time.sleep(0.3)
    raise AssertionError(f"rollout never got there: {rollout_status(server)}")


def serving() -> set[str]:
    seen = set()
    for _ in range(20):
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=5) as resp:
            seen.add(json.loads(resp.read())["candidate"])
    return seen


def test_an_aborted_rollout_is_retried_from_its_first_step(
    server: ServerProcess, repo: GitRepo
) -> None:
    ok(server.cli("project", "add", str(repo.path)))
    ok(server.cli("release", "cut", "shop"))
    first = ok(server.cli("deploy", "shop", "1.0.0-rc.1", "production", "--json")).json()
    until(server, lambda r: r["deployment_id"] == first["id"] and r["phase"] == "promoted")
    fix = repo.commit("fix: rounding (#2)", {"sample.json": json.dumps({"version": "v2"})})
    ok(server.cli("release", "pick", "shop", "1.0.0", fix))
    d2 = ok(server.cli("deploy", "shop", "1.0.0-rc.2", "production", "--json")).json()
    until(server, lambda r: r["deployment_id"] == d2["id"] and r["phase"] == "paused")

    aborted = ok(server.cli("rollout", "abort", "shop", "production", "--wait", "--json")).json()
    assert aborted["phase"] == "rolled_back" and aborted["not_done"] == []
    assert serving() == {"1.0.0-rc.1"}
    refused = server.cli("rollout", "abort", "shop", "production", "--wait")
    assert refused.code != 0  # nothing in progress to abort

    again = ok(server.cli("rollout", "retry", "shop", "production", "--json")).json()
    assert again["candidate"] == "1.0.0-rc.2" and again["id"] != d2["id"]
    r = until(server, lambda r: r["deployment_id"] == again["id"] and r["phase"] == "paused")
    assert (r["step"], r["weight"], r["awaiting"]) == (1, 20.0, "rollout promote")
    assert serving() <= {"1.0.0-rc.1", "1.0.0-rc.2"}
    text = ok(server.cli("rollout", "status", "shop", "production")).out
    assert "waiting for: shipyard rollout promote" in text

    ok(server.cli("rollout", "promote", "shop", "production"))
    until(server, lambda r: r["deployment_id"] == again["id"] and r["phase"] == "promoted")
    assert serving() == {"1.0.0-rc.2"}
    retried = server.cli("rollout", "retry", "shop", "production")
    assert retried.code == 4 and "only a rolled back" in retried.err
