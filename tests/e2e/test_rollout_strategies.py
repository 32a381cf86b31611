"""Blue-green and segments through a real HAProxy: preview by header, one switch, logged-out users.

The blue-green policy starts the new colour beside the old with 0% of the traffic, reachable only
with the preview header, waits for a human, then switches everything at once. The segment policy
sends requests without a `session` cookie (logged-out users) to the new version before any weight.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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

CONFIG = sample_yaml(f"""\
environments:
  - name: production
    target: {{kind: local, start: "{sample_service.START}", health_timeout: 20}}
    router: {{port: {PORT}}}
    policy: switch
policies:
  switch:
    strategy: blue_green
    keep_old_for: 1h
  logged-out-first:
    steps:
      - segment: {{match: {{cookie: {{name: session, present: false}}}}}}
      - pause: {{}}
      - set_weight: 50
      - pause: {{}}
""")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running(tmp_path / "data", {"production": PORT}, env={"SHIPYARD_LEASE_SECONDS": "3"}) as s:
        yield s


def wait_for(server: ServerProcess, deployment_id: int, phases: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = rollout_status(server)
        if r["deployment_id"] == deployment_id and r["phase"] in phases:
            return r
        time.sleep(0.2)
    raise AssertionError(f"no {phases}: {rollout_status(server)}")


def answered(headers: dict[str, str] | None = None, n: int = 16) -> set[str]:
    seen = set()
    for _ in range(n):
        req = urllib.request.Request(f"http://127.0.0.1:{PORT}/", headers=headers or {})
        with urllib.request.urlopen(req, timeout=5) as resp:
            seen.add(json.loads(resp.read())["candidate"])
    return seen


def test_blue_green_preview_then_one_switch_and_segment_first(
    server: ServerProcess, tmp_path: Path
) -> None:
    repo = sample_repo(tmp_path / "shop", CONFIG, "v1", message="feat: shop (#1)")
    ok(server.cli("project", "add", str(repo.path)))
    ok(server.cli("release", "cut", "shop"))
    d1 = ok(server.cli("deploy", "shop", "1.0.0-rc.1", "production", "--json")).json()
    wait_for(server, d1["id"], ("promoted",))

    ok(
        server.cli(
            "release", "pick", "shop", "1.0.0", repo.commit("fix: v2", {"sample.json": "{}"})
        )
    )
    d2 = ok(server.cli("deploy", "shop", "1.0.0-rc.2", "production", "--json")).json()
    waiting = wait_for(server, d2["id"], ("paused",))
    assert waiting["pause_reason"] == "waiting for promote to switch all traffic"
    timed_out = server.cli("rollout", "status", "shop", "production", "--watch", "--timeout", "1")
    assert timed_out.code == 11, timed_out  # the message names the human action awaited
    assert "still waits after 1s for: waiting for promote to switch all traffic" in timed_out.err
    assert waiting["strategy"] == "blue_green" and waiting["weight"] == 0
    assert answered() == {"1.0.0-rc.1"}  # live traffic stays on blue
    assert answered({"x-shipyard-preview": "1"}) == {"1.0.0-rc.2"}  # green, by preview header

    ok(server.cli("rollout", "promote", "shop", "production"))
    switched = wait_for(server, d2["id"], ("promoted",))
    assert answered() == {"1.0.0-rc.2"}  # one switch, all of it
    assert "stays ready until" in switched["records"][-1]["message"]
    assert ok(server.cli("deployment", str(d2["id"]), "--json")).json()["state"] == "succeeded"

    ok(
        server.cli(
            "release", "pick", "shop", "1.0.0", repo.commit("fix: v3", {"sample.json": "[]"})
        )
    )
    d3 = ok(
        server.cli(
            "deploy", "shop", "1.0.0-rc.3", "production", "--policy", "logged-out-first", "--json"
        )
    ).json()
    paused = wait_for(server, d3["id"], ("paused",))
    assert paused["segment"] == "not (cookie session present)" and paused["weight"] == 0
    assert answered() == {"1.0.0-rc.3"}  # logged out: no session cookie
    assert answered({"Cookie": "session=abc"}) == {"1.0.0-rc.2"}  # logged in: still stable
    ok(server.cli("rollout", "promote", "shop", "production"))
    deadline = time.monotonic() + 30
    while (half := rollout_status(server))["step"] != 3:  # past the pause, 50%, the next pause
        assert time.monotonic() < deadline, half
        time.sleep(0.1)
    assert (half["phase"], half["weight"]) == ("paused", 50)
    seen: set[str] = set()
    deadline = time.monotonic() + 5  # the engine applies the route within a poll or two
    while seen != {"1.0.0-rc.2", "1.0.0-rc.3"} and time.monotonic() < deadline:
        seen = answered({"Cookie": "session=abc"}, n=40)
    assert seen == {"1.0.0-rc.2", "1.0.0-rc.3"}
    ok(server.cli("rollout", "abort", "shop", "production", "--reason", "not today"))
    back = wait_for(server, d3["id"], ("rolled_back",))
    assert back["reason"] == "aborted by admin: not today"
    watched = server.cli("rollout", "status", "shop", "production", "--watch")
    assert watched.code == 10, watched  # CI sees an aborted rollout as such, not as success
    assert "was rolled back: aborted by admin: not today" in watched.err
    assert answered() == answered({"Cookie": "session=abc"}) == {"1.0.0-rc.2"}
