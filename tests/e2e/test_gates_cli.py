"""Gates that hold, as an operator drives them: real server, real CLI, real git.

Scoped tokens with emails, server freezes, a flag change request in a protected environment, the
last admin token, and the recovery token minted on the host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gitrepo import GitRepo
from tests.support.server import ServerProcess, ok, running

# nothing is deployed here; a real server refuses the test-only memory kind, so: a no-op command
CONFIG = """\
project: shop
environments:
  - name: staging
    target: {kind: command, deploy: "true"}
  - name: production
    target: {kind: command, deploy: "true"}
    requires: [staging]
    protected: true
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running(tmp_path / "data", {}) as s:
        yield s


def mint(server: ServerProcess, *args: str) -> str:
    out = ok(server.cli("token", "create", *args)).out
    return out.strip().splitlines()[-1]


@pytest.mark.slow
def test_operator_drives_scopes_freezes_flag_requests_and_recovery(
    server: ServerProcess, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "shop")
    repo.commit("chore: shipyard", {"shipyard.yaml": CONFIG, "app.py": "V = 1\n"})
    ok(server.cli("project", "add", str(repo.path)))

    bob = mint(
        server, "--user", "bob", "--role", "deployer", "--project", "shop", "--env", "staging"
    )
    grace = mint(
        server,
        "--user", "grace", "--role", "approver",
        "--email", "grace@example.com", "--email", "GRACE@corp.example",
    )  # fmt: skip
    me = ok(server.cli("whoami", "--json", token=grace)).json()
    assert me["emails"] == ["grace@corp.example", "grace@example.com"]
    listed = ok(server.cli("token", "list")).out
    assert "shop/staging" in listed and "GRACE@corp.example" in listed

    refused = server.cli("flag", "create", "shop", "production", "cart", token=bob)
    assert refused.code == 6 and "scoped to" in refused.err, refused  # permission denied
    ok(server.cli("flag", "create", "shop", "staging", "cart", token=bob))

    ada = mint(server, "--user", "ada", "--role", "deployer")
    asked = ok(server.cli("flag", "create", "shop", "production", "cart", "--enabled", token=ada))
    assert "change request #1" in asked.out
    own = server.cli(
        "flag", "approve", "1", token=mint(server, "--user", "ada", "--role", "approver")
    )
    assert own.code == 6 and "may not approve" in own.err, own
    assert "pending" in ok(server.cli("flag", "requests", "shop", "production")).out
    ok(server.cli("flag", "approve", "1", token=grace))
    shown = ok(server.cli("flag", "show", "shop", "production", "cart", "--json")).json()
    assert shown["enabled"] is True

    added = ok(server.cli("freeze", "add", "shop", "production", "--duration", "2h",
                          "--reason", "incident 42", "--json", token=ada)).json()  # fmt: skip
    assert added["reason"] == "incident 42"
    frozen = server.cli("flag", "rollout", "shop", "production", "cart", "50", token=ada)
    assert frozen.code == 4 and "frozen" in frozen.err, frozen
    assert "incident 42" in ok(server.cli("freeze", "list", "shop")).out
    assert server.cli("freeze", "end", str(added["id"]), token=ada).code == 6
    ok(server.cli("freeze", "end", str(added["id"]), token=grace))
    bad = server.cli("freeze", "add", "shop", "production", "--duration", "2h", "--reason", "x",
                     "--until", "2030-01-01T00:00+00:00")  # fmt: skip
    assert bad.code == 5, bad

    [admin_row] = [
        t for t in ok(server.cli("token", "list", "--json")).json() if t["role"] == "admin"
    ]
    last = server.cli("token", "revoke", str(admin_row["id"]))
    assert last.code == 4 and "last admin token" in last.err, last

    server.stop()
    recovered = ok(server.cli("admin", "token", "--data-dir", str(server.data_dir)))
    secret = recovered.out.strip().splitlines()[-1]
    server.start()
    server.admin_token = secret
    assert ok(server.cli("whoami")).out.startswith("recovery-admin (admin")
    kinds = ok(server.cli("events", "--kind", "token", "--json")).json()
    assert "token.recovered" in [e["kind"] for e in kinds]
