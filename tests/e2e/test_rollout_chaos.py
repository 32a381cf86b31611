"""Chaos: rollouts in flight while the servers are killed with SIGKILL at random moments.

Two `shipyard serve` processes share one PostgreSQL database (and one data directory, as two
workers on one machine would). They are killed -9 in turn and started again, several times,
while three rollouts run under load: two healthy candidates and one that fails half of its
requests. Afterwards every rollout has converged the way its metrics dictate, no deployment is
duplicated or lost, every decision has its event, and no request was dropped by the moves.
Bounded: about a minute; the kill moments come from a seeded random generator (printed).
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import loadgen, postgres, sample_service
from tests.support.server import (
    ServerProcess,
    free_port,
    ok,
    sample_repo,
    sample_yaml,
    stop_environments,
)

pytestmark = pytest.mark.postgres

ENVS = {name: free_port() for name in ("blue", "green", "red")}
SEED = int(os.environ.get("SHIPYARD_CHAOS_SEED", "20261122"))


def _config() -> str:
    envs = "".join(
        f"""\
  - name: {name}
    target: {{kind: local, start: "{sample_service.START}", instances: 2, health_timeout: 20}}
    router: {{port: {port}}}
    policy: canary
"""
        for name, port in ENVS.items()
    )
    return sample_yaml(f"""\
environments:
{envs}policies:
  canary:
    steps:
      - set_weight: 20
      - analysis: {{checks: [errors], interval: 1s, duration: 5s}}
      - set_weight: 50
      - analysis: {{checks: [errors], interval: 1s, duration: 4s}}
checks:
  errors: {{metric: error_ratio, judge: threshold, threshold: {{max: 0.1}}, failure_limit: 1}}
""")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    yield data
    stop_environments(data, "shop", ENVS)


def api(server: ServerProcess, path: str) -> Any:
    resp = httpx.get(
        f"{server.url}/api/v1{path}",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=10,
    )
    resp.raise_for_status()
    return resp.json()


def phase(server: ServerProcess, env: str) -> dict[str, Any]:
    return api(server, f"/projects/shop/environments/{env}/rollout")  # type: ignore[no-any-return]


def serving(port: int) -> set[str]:
    seen = set()
    for _ in range(12):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            seen.add(json.loads(resp.read())["candidate"])
    return seen


def test_rollouts_converge_through_repeated_sigkills(
    pg_server: postgres.PostgresServer, data_dir: Path, tmp_path: Path
) -> None:
    url = pg_server.create_database()
    env = {"SHIPYARD_LEASE_SECONDS": "2"}
    a = ServerProcess(data_dir, database_url=url, env=env).start()
    token = a.admin_token
    b = ServerProcess(data_dir, database_url=url, env=env)
    b.admin_token = token
    b.start()
    servers = [a, b]
    loads: list[loadgen.Load] = []
    rng = random.Random(SEED)
    print(f"chaos seed {SEED}")
    try:
        repo = sample_repo(tmp_path / "shop", _config(), "v1", message="feat: shop (#1)")
        ok(a.cli("project", "add", str(repo.path)))
        ok(a.cli("release", "cut", "shop"))
        for name in ENVS:
            ok(a.cli("deploy", "shop", "1.0.0-rc.1", name))
        deadline = time.monotonic() + 60
        while any(phase(a, n)["phase"] != "promoted" for n in ENVS):
            assert time.monotonic() < deadline, [phase(a, n) for n in ENVS]
            time.sleep(0.3)
        good = repo.commit("fix: v2 (#2)", {"sample.json": json.dumps({"version": "v2"})})
        ok(a.cli("release", "pick", "shop", "1.0.0", good))
        bad = repo.commit(
            "feat: v3 (#3)", {"sample.json": json.dumps({"version": "v3", "error_rate": 0.5})}
        )
        ok(a.cli("release", "pick", "shop", "1.0.0", bad))

        loads = [
            loadgen.Load(f"http://127.0.0.1:{port}/", seconds=90, concurrency=2).start()
            for port in ENVS.values()
        ]
        ok(a.cli("deploy", "shop", "1.0.0-rc.2", "blue", "--no-wait"))
        ok(a.cli("deploy", "shop", "1.0.0-rc.2", "green", "--no-wait"))
        ok(a.cli("deploy", "shop", "1.0.0-rc.3", "red", "--no-wait"))

        for k in range(5):  # kill -9 at random moments, each server in turn, and start it again
            time.sleep(rng.uniform(0.3, 2.5))
            victim = servers[k % 2]
            victim.kill9()
            if rng.random() < 0.5:
                time.sleep(rng.uniform(0.0, 1.5))  # sometimes stay dead a while
            again = ServerProcess(data_dir, database_url=url, env=env)
            again.admin_token = token
            servers[k % 2] = again.start()

        live = servers[0]
        deadline = time.monotonic() + 90
        final: dict[str, dict[str, Any]] = {}
        while len(final) < len(ENVS):
            assert time.monotonic() < deadline, {n: phase(live, n) for n in ENVS}
            for name in ENVS:
                r = phase(live, name)
                if r["canary"] != "1.0.0-rc.1" and r["phase"] in ("promoted", "rolled_back"):
                    final[name] = r
            time.sleep(0.3)
    finally:
        results = [load.stop() for load in loads]
        for s in servers:
            s.stop()

    again = ServerProcess(data_dir, database_url=url, env=env)
    again.admin_token = token
    again.start()
    try:
        assert final["blue"]["phase"] == final["green"]["phase"] == "promoted", final
        assert final["red"]["phase"] == "rolled_back", final
        assert final["red"]["reason"].startswith("analysis failed"), final["red"]
        assert serving(ENVS["blue"]) == serving(ENVS["green"]) == {"1.0.0-rc.2"}
        assert serving(ENVS["red"]) == {"1.0.0-rc.1"}

        history = api(again, "/projects/shop/deployments")
        per_target = Counter((d["environment"], d["candidate"]) for d in history)
        assert per_target == {(n, "1.0.0-rc.1"): 1 for n in ENVS} | {
            ("blue", "1.0.0-rc.2"): 1,
            ("green", "1.0.0-rc.2"): 1,
            ("red", "1.0.0-rc.3"): 1,
        }, per_target  # nothing duplicated, nothing lost
        states = {(d["environment"], d["candidate"]): d["state"] for d in history}
        assert states[("red", "1.0.0-rc.3")] == "failed"
        assert states[("blue", "1.0.0-rc.2")] == states[("green", "1.0.0-rc.2")] == "succeeded"

        events = api(again, "/events?project=shop&limit=1000")
        outcomes = Counter(
            e["subject"]
            for e in events
            if e["kind"] in ("deployment.succeeded", "deployment.failed")
        )
        assert set(outcomes.values()) == {1} and len(outcomes) == 6, outcomes
        for d in history:
            explained = api(again, f"/projects/shop/deployments/{d['id']}/rollout")
            kinds = [r["kind"] for r in explained["records"]]
            assert kinds[-1] in ("promoted", "rolled_back"), kinds
            assert kinds.count(kinds[-1]) == 1, kinds  # decided once, however often killed
            rollout_events = [
                e["kind"].removeprefix("rollout.")
                for e in events
                if e["subject"] == f"deployment {d['id']}" and e["kind"].startswith("rollout.")
            ]
            assert sorted(rollout_events) == sorted(kinds), (kinds, rollout_events)
    finally:
        again.stop()

    for name, result in zip(ENVS, results, strict=True):
        dropped = sum(result.errors.values()) + sum(result.statuses[s] for s in (502, 503, 504))
        assert result.total > 50, (name, result)
        assert dropped == 0, (name, result)
