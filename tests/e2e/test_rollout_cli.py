"""Progressive delivery as a user drives it: real server, real HAProxy, real processes, real load.

A healthy candidate walks the canary steps to 100%; a candidate that fails 30% of its requests
is rolled back by the analysis; neither move drops a request (only the bad version's own 500s
fail), and every decision can be explained afterwards.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import loadgen, sample_service
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
    target: {{kind: local, start: "{sample_service.START}", instances: 2, health_timeout: 20}}
    router: {{port: {PORT}}}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 20
      - analysis: {{checks: [errors], interval: 1s, duration: 4s}}
      - set_weight: 50
      - analysis: {{checks: [errors], interval: 1s, duration: 3s}}
  speed:
    steps:
      - set_weight: 50
      - analysis: {{checks: [errors, latency], interval: 1s, duration: 4s}}
checks:
  errors: {{metric: error_ratio, judge: threshold, threshold: {{max: 0.05}}, failure_limit: 1}}
  latency: {{metric: latency_p95, judge: threshold, threshold: {{max: 0.15}}, failure_limit: 1}}
""")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running(tmp_path / "data", {"production": PORT}, env={"SHIPYARD_LEASE_SECONDS": "3"}) as s:
        yield s


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return sample_repo(tmp_path / "shop", CONFIG, "v1")


def wait_done(server: ServerProcess, deployment_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = rollout_status(server)
        if r["deployment_id"] == deployment_id and r["phase"] in ("promoted", "rolled_back"):
            return r
        time.sleep(0.3)
    raise AssertionError(
        f"rollout of deployment {deployment_id} did not end: {rollout_status(server)}"
    )


def serving() -> set[str]:
    seen = set()
    for _ in range(20):
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=5) as resp:
            seen.add(json.loads(resp.read())["candidate"])
    return seen


def proxy_failures(result: loadgen.LoadResult) -> int:
    """Requests the move itself broke: connection errors and the proxy's own 502/503/504."""
    return sum(result.errors.values()) + sum(result.statuses[s] for s in (502, 503, 504))


def test_healthy_canary_is_promoted_and_a_failing_one_rolled_back(
    server: ServerProcess, repo: GitRepo
) -> None:
    ok(server.cli("project", "add", str(repo.path)))
    ok(server.cli("release", "cut", "shop"))
    first = ok(server.cli("deploy", "shop", "1.0.0-rc.1", "production", "--json")).json()
    wait_done(server, first["id"])
    assert serving() == {"1.0.0-rc.1"}

    load = loadgen.Load(f"http://127.0.0.1:{PORT}/", seconds=50, concurrency=4).start()
    try:
        good = repo.commit("fix: faster (#2)", {"sample.json": json.dumps({"version": "v2"})})
        ok(server.cli("release", "pick", "shop", "1.0.0", good))
        # --wait (the default) waits for the rollout's outcome: CI can act on the exit code
        d2 = ok(server.cli("deploy", "shop", "1.0.0-rc.2", "production", "--json")).json()
        assert d2["state"] == "succeeded"
        done = wait_done(server, d2["id"])
        assert done["phase"] == "promoted"
        assert [s["state"] for s in done["steps"]] == ["done"] * 4
        shown = ok(server.cli("deployment", str(d2["id"]), "--json")).json()
        assert shown["state"] == "succeeded"
        ok(server.cli("rollout", "status", "shop", "production", "--watch"))  # promoted: exit 0
        assert serving() == {"1.0.0-rc.2"}

        bad = repo.commit(
            "feat: risky (#3)", {"sample.json": json.dumps({"version": "v3", "error_rate": 0.3})}
        )
        ok(server.cli("release", "pick", "shop", "1.0.0", bad))
        rolled_back = server.cli("deploy", "shop", "1.0.0-rc.3", "production")
        assert rolled_back.code == 10, rolled_back  # deploy --wait: the rollout rolled back
        assert "was rolled back: analysis failed: errors:" in rolled_back.err
        d3 = rollout_status(server)
        done = wait_done(server, d3["deployment_id"])
        d3 = {"id": d3["deployment_id"]}
        assert done["phase"] == "rolled_back"
        assert done["reason"].startswith("analysis failed: errors:")
        assert serving() == {"1.0.0-rc.2"}
    finally:
        result = load.stop()
    assert result.total > 200, result
    assert proxy_failures(result) == 0, result  # weights moved five times, nothing dropped
    assert result.statuses[500] > 0  # the bad version's own failures were seen, then stopped

    failed = server.cli("deployment", str(d3["id"]), "--json").json()
    assert failed["state"] == "failed" and "rolled back: analysis failed" in failed["outcome"]
    explained = ok(server.cli("rollout", "explain", "shop", str(d3["id"]), "--json")).json()
    kinds = [r["kind"] for r in explained["records"]]
    assert kinds[:2] == ["started", "weight"] and kinds[-2:] == ["aborting", "rolled_back"]
    aborting = explained["records"][-2]
    [check] = aborting["evidence"]["checks"]
    assert check["verdict"] == "fail" and check["failures"] == 2
    assert all(v > 0.05 for v in check["evidence"]["values"][-2:])
    text = ok(server.cli("rollout", "explain", "shop", str(d3["id"]))).out
    assert "errors: fail" in text and "> max 0.05" in text
    status_text = ok(server.cli("rollout", "status", "shop", "production")).out
    assert "rolled_back" in status_text and "1.0.0-rc.3" in status_text


def test_a_slow_canary_is_rolled_back_on_its_p95_latency(
    server: ServerProcess, repo: GitRepo
) -> None:
    ok(server.cli("project", "add", str(repo.path)))
    ok(server.cli("release", "cut", "shop"))
    first = ok(server.cli("deploy", "shop", "1.0.0-rc.1", "production", "--json")).json()
    wait_done(server, first["id"])
    slow = repo.commit(
        "perf: n+1 query (#4)",
        {"sample.json": json.dumps({"version": "v2", "latency_ms": 300})},
    )
    ok(server.cli("release", "pick", "shop", "1.0.0", slow))
    with loadgen.Load(f"http://127.0.0.1:{PORT}/", seconds=30, concurrency=4) as load:
        d2 = ok(
            server.cli(
                "deploy", "shop", "1.0.0-rc.2", "production", "--policy", "speed", "--no-wait",
                "--json",
            )
        ).json()
        done = wait_done(server, d2["id"])
    result = load.result
    assert done["phase"] == "rolled_back", done
    assert done["reason"].startswith("analysis failed: latency:"), done["reason"]
    assert serving() == {"1.0.0-rc.1"}
    assert proxy_failures(result) == 0, result
    explained = ok(server.cli("rollout", "explain", "shop", str(d2["id"]), "--json")).json()
    aborting = next(r for r in explained["records"] if r["kind"] == "aborting")
    checks = {c["name"]: c for c in aborting["evidence"]["checks"]}
    assert checks["errors"]["verdict"] != "fail"  # it was slow, not failing
    assert checks["latency"]["verdict"] == "fail"
    assert all(v > 0.15 for v in checks["latency"]["evidence"]["values"][-2:])
