"""Two-step delivery as a user drives it: real server, real CLI, real processes on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import sample_service
from tests.support.gitrepo import GitRepo
from tests.support.server import ServerProcess, ok, running, sample_repo, sample_yaml

CONFIG = sample_yaml(f"""\
environments:
  - name: staging
    target: {{kind: local, start: "{sample_service.START}", health: /healthz, health_timeout: 20}}
  - name: production
    target: {{kind: local, start: "{sample_service.START}", health: /healthz, health_timeout: 20}}
    requires: [staging]
    approval: {{required: 1, approvers: ["role:approver"]}}
""")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running(tmp_path / "data", {"staging": None, "production": None}) as s:
        yield s


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return sample_repo(tmp_path / "shop", CONFIG, "repo")


def served(server: ServerProcess, env: str) -> set[str]:
    """The candidates answering GET / on every instance the environment reports."""
    [row] = [r for r in server.cli("status", "shop", "--json").json() if r["environment"] == env]
    seen = set()
    for inst in row["instances"]:
        with urllib.request.urlopen(f"http://{inst['address']}/", timeout=5) as resp:
            seen.add(json.loads(resp.read())["candidate"])
    return seen


def test_deploy_promote_approve_tamper_rollback(server: ServerProcess, repo: GitRepo) -> None:
    ok(server.cli("project", "add", str(repo.path)))
    ok(server.cli("release", "cut", "shop"))
    bob = ok(server.cli("token", "create", "--user", "bob", "--role", "approver", "--json")).json()[
        "token"
    ]

    d1 = ok(server.cli("deploy", "shop", "1.0.0-rc.1", "staging", "--json")).json()
    assert (d1["state"], d1["mode"]) == ("succeeded", "deploy")
    assert served(server, "staging") == {"1.0.0-rc.1"}

    fix = repo.commit("fix: tax (#2)", {"sample.json": json.dumps({"version": "repo-fixed"})})
    ok(server.cli("release", "pick", "shop", "1.0.0", fix))
    ok(server.cli("deploy", "shop", "1.0.0-rc.2", "staging"))
    assert served(server, "staging") == {"1.0.0-rc.2"}  # rc.1's processes are gone

    waiting = ok(server.cli("deploy", "shop", "1.0.0-rc.2", "production", "--json")).json()
    assert waiting["state"] == "awaiting_approval"
    assert "needs 1 more approval" in waiting["waiting_for"][0]
    approved = ok(
        server.cli("approve", str(waiting["id"]), "--comment", "lgtm", "--json", token=bob)
    ).json()
    assert approved["state"] in ("running", "succeeded")

    # a candidate whose stored bytes changed is refused; the old version keeps serving
    fix2 = repo.commit("fix: more tax (#3)", {"sample.json": json.dumps({"version": "repo-3"})})
    ok(server.cli("release", "pick", "shop", "1.0.0", fix2))
    rc3 = ok(server.cli("release", "show", "shop", "1.0.0", "--json")).json()["candidates"][-1]
    digest = rc3["artifacts"][0]["digest"].split(":")[1]
    stored = server.data_dir / "artifacts" / "sha256" / digest[:2] / digest
    stored.chmod(0o644)
    stored.write_bytes(b"not the artifact that was built")
    tampered = server.cli("deploy", "shop", "1.0.0-rc.3", "staging")
    assert tampered.code == 7, tampered  # an integrity failure, not just a failed deployment
    assert "expected sha256:" in tampered.err and "1.0.0-rc.2 keeps serving" in tampered.err
    assert served(server, "staging") == {"1.0.0-rc.2"}

    # the last deployment failed: rollback goes to the last candidate that succeeded there
    back = ok(server.cli("rollback", "shop", "staging", "--json")).json()
    assert (back["mode"], back["candidate"], back["state"]) == (
        "rollback",
        "1.0.0-rc.2",
        "succeeded",
    )
    # now the last one succeeded: rollback goes to the candidate that ran before it
    back = ok(server.cli("rollback", "shop", "staging", "--json")).json()
    assert (back["candidate"], back["from_candidate"]) == ("1.0.0-rc.1", "1.0.0-rc.2")
    assert served(server, "staging") == {"1.0.0-rc.1"}

    history = ok(server.cli("history", "shop", "staging", "--json")).json()
    assert [(h["candidate"], h["mode"], h["state"]) for h in history] == [
        ("1.0.0-rc.1", "rollback", "succeeded"),
        ("1.0.0-rc.2", "rollback", "rolled_back"),
        ("1.0.0-rc.3", "deploy", "failed"),
        ("1.0.0-rc.2", "deploy", "succeeded"),
        ("1.0.0-rc.1", "deploy", "succeeded"),
    ]
    text = ok(server.cli("status", "shop")).out
    assert "staging" in text and "1.0.0-rc.1" in text and "production" in text
