"""Status is a reading of reality, as a user meets it: real server, HAProxy, processes, CLI.

Regressions of issue 13: after an automatic canary rollback `status` said `1/1 instances
healthy` where two are configured and a killed stable instance never came back (nor after a
server restart); an environment switched from a `command` target to `local` instances with a
canary stayed at weight 0% forever, and `rollback` then printed `succeeded` while the new code
still served.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters.targets.local import _alive
from tests.support import loadgen, sample_service
from tests.support.reachable import writable
from tests.support.server import (
    ServerProcess,
    free_port,
    ok,
    rollout_status,
    sample_repo,
    sample_yaml,
    stop_environments,
)

pytestmark = pytest.mark.slow


def _serving(port: int, n: int = 20) -> set[str]:
    seen = set()
    for _ in range(n):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            seen.add(json.loads(resp.read())["candidate"])
    return seen


def _production(server: ServerProcess) -> dict[str, Any]:
    rows = ok(server.cli("status", "shop", "--json")).json()
    [row] = [r for r in rows if r["environment"] == "production"]
    return row  # type: ignore[no-any-return]


def _eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.2)


def _ended(server: ServerProcess, deployment_id: int, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        r = rollout_status(server)
        ended = r["deployment_id"] == deployment_id and r["phase"] in ("promoted", "rolled_back")
        return r if ended else None

    return _eventually(done, timeout, f"the rollout of deployment {deployment_id} ending")  # type: ignore[no-any-return]


def _answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def _back(server: ServerProcess, address: str, old_pid: int) -> Callable[[], bool]:
    def check() -> bool:
        row = _production(server)
        again = [i for i in row["instances"] if i["address"] == address]
        return bool(again) and again[0]["pid"] != old_pid and row["healthy"] == 2

    return check


def test_status_counts_configured_instances_and_a_killed_stable_comes_back_after_auto_rollback(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = sample_yaml(f"""\
environments:
  - name: production
    target: {{kind: local, start: "{sample_service.START}", instances: 2, health_timeout: 20}}
    router: {{port: {port}}}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 50
      - analysis: {{checks: [errors], interval: 1s, duration: 4s}}
checks:
  errors: {{metric: error_ratio, judge: threshold, threshold: {{max: 0.05}}, failure_limit: 1}}
""")
    repo = sample_repo(tmp_path / "shop", config, "v1")
    data = tmp_path / "data"
    env = {"SHIPYARD_LEASE_SECONDS": "3"}
    server = ServerProcess(data, env=env).start()
    token = server.admin_token
    again: ServerProcess | None = None
    try:
        ok(server.cli("project", "add", str(repo.path)))
        ok(server.cli("release", "cut", "shop"))
        first = ok(server.cli("deploy", "shop", "1.0.0-rc.1", "production", "--json")).json()
        _ended(server, first["id"])
        bad = repo.commit(
            "feat: broken (#2)", {"sample.json": json.dumps({"version": "v2", "error_rate": 1})}
        )
        ok(server.cli("release", "pick", "shop", "1.0.0", bad))
        load = loadgen.Load(f"http://127.0.0.1:{port}/", seconds=30, concurrency=2).start()
        try:
            rolled = server.cli("deploy", "shop", "1.0.0-rc.2", "production", "--json")
            assert rolled.code == 10, rolled  # --wait: the rollout ended rolled back
            newest = ok(server.cli("history", "shop", "--json")).json()[0]
            assert _ended(server, newest["id"])["phase"] == "rolled_back"
        finally:
            load.stop()

        row = _production(server)
        assert row["candidate"] == "1.0.0-rc.1" and row["identity"] == "verified"
        assert (row["configured"], row["healthy"], row["others"]) == (2, 2, [])
        assert row["summary"] == "2 configured, 2 healthy"
        assert "2 configured, 2 healthy" in ok(server.cli("status", "shop")).out

        victim = row["instances"][0]
        os.kill(victim["pid"], signal.SIGKILL)
        _eventually(_back(server, victim["address"], victim["pid"]), 15, "a restart")
        assert _serving(port) == {"1.0.0-rc.1"}

        row = _production(server)
        server.stop()  # the instances keep serving; a new server must adopt them
        again = ServerProcess(data, env=env)
        again.admin_token = token
        again.start()
        victim = row["instances"][1]
        os.kill(victim["pid"], signal.SIGKILL)  # before anybody asked the new server anything
        _eventually(lambda: not _alive(victim["pid"]), 5, "the instance dying")
        _eventually(lambda: _answers(victim["address"]), 15, "a restart by the new server")
        now = _production(again)
        pids = {i["address"]: i["pid"] for i in now["instances"]}
        assert now["healthy"] == 2 and len(pids) == 2, now
        assert pids[victim["address"]] != victim["pid"]
        survivor = row["instances"][0]
        assert pids[survivor["address"]] == survivor["pid"]  # adopted, never reaped
        assert _serving(port) == {"1.0.0-rc.1"}
    finally:
        server.stop()
        if again is not None:
            again.stop()
        stop_environments(data, "shop", {"production": port})


def test_switching_production_from_command_to_local_canary_starts_the_stable_first_and_rollback_tells_the_truth(
    tmp_path: Path,
) -> None:
    port = free_port()
    live = writable(tmp_path / "out") / "live.txt"  # what the command target "deployed"
    before = sample_yaml(f"""\
environments:
  - name: production
    target: {{kind: command, deploy: 'echo "$SHIPYARD_TO_CANDIDATE" > {live}', identify: 'cat {live}'}}
""")
    after = sample_yaml(f"""\
environments:
  - name: production
    target: {{kind: local, start: "{sample_service.START}", instances: 2, health_timeout: 20}}
    router: {{port: {port}}}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 50
      - pause: {{}}
""")
    repo = sample_repo(tmp_path / "shop", before, "v1")
    data = tmp_path / "data"
    server = ServerProcess(data, env={"SHIPYARD_LEASE_SECONDS": "3"}).start()
    try:
        ok(server.cli("project", "add", str(repo.path)))
        ok(server.cli("release", "cut", "shop"))
        ok(server.cli("deploy", "shop", "1.0.0-rc.1", "production"))
        assert live.read_text().strip() == "1.0.0-rc.1"
        row = _production(server)
        assert (row["candidate"], row["identity"], row["configured"]) == (
            "1.0.0-rc.1",
            "verified",
            None,
        )

        switch = repo.commit(
            "feat: canary in production (#2)",
            {"shipyard.yaml": after, "sample.json": json.dumps({"version": "v2"})},
        )
        ok(server.cli("release", "pick", "shop", "1.0.0", switch))
        said = ok(server.cli("deploy", "shop", "1.0.0-rc.2", "production"))
        assert "plan: 1.0.0-rc.1 (stable) does not run on target local" in said.out, said
        paused = _eventually(
            lambda: (r := rollout_status(server))["phase"] == "paused" and r, 30, "the pause"
        )
        assert paused["weight"] == 50, paused
        assert _serving(port, 40) == {"1.0.0-rc.1", "1.0.0-rc.2"}  # not stuck at 0%
        row = _production(server)
        assert row["candidate"] == "1.0.0-rc.1" and row["others"] == ["1.0.0-rc.2"]

        refused = server.cli("rollback", "shop", "production", "--to", "1.0.0-rc.2")
        assert refused.code == 4 and "never succeeded there" in refused.err, refused
        unknown = server.cli("rollback", "shop", "production", "--to", "9.9.9-rc.1")
        assert unknown.code == 3, unknown

        back = server.cli("rollback", "shop", "production", "--to", "1.0.0-rc.1")
        assert back.code == 0 and "succeeded" in back.out, back
        history = ok(server.cli("history", "shop", "--json")).json()
        shown = ok(server.cli("deployment", str(history[0]["id"]), "--json")).json()
        assert _serving(port, 40) == {"1.0.0-rc.1"}, (shown, _production(server))
        row = _production(server)
        assert (row["candidate"], row["others"], row["healthy"]) == ("1.0.0-rc.1", [], 2)
        _eventually(lambda: rollout_status(server)["phase"] == "rolled_back", 30, "the abort")

        ok(server.cli("veto", "shop", "1.0.0-rc.1", "--reason", "corrupts carts"))
        vetoed = server.cli("rollback", "shop", "production", "--to", "1.0.0-rc.1")
        assert vetoed.code == 4 and "vetoed" in vetoed.err, vetoed
        row = _production(server)
        assert row["vetoed"]["1.0.0-rc.1"]["reason"] == "corrupts carts"
        assert "VETOED" in ok(server.cli("status", "shop")).out
        [release] = ok(server.cli("release", "list", "shop", "--json")).json()
        rc1 = next(c for c in release["candidates"] if c["name"] == "1.0.0-rc.1")
        assert (rc1["status"], rc1["deployable"], rc1["veto"]["reason"]) == (
            "vetoed",
            False,
            "corrupts carts",
        )
        assert "vetoed by" in ok(server.cli("release", "show", "shop", "1.0.0")).out
    finally:
        server.stop()
        stop_environments(data, "shop", {"production": port})
