"""The release workflow as a user drives it: the real CLI against a real `shipyard serve`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess

CONFIG = """\
project: shop
mainline: main
versioning: {scheme: semver, initial: 1.0.0}
build:
  command: |
    out="$SHIPYARD_ARTIFACTS_DIR"
    printf '%s %s %s' "$SHIPYARD_VERSION" "$SHIPYARD_CANDIDATE" "$SHIPYARD_SHA" > "$out/build.txt"
    tar czf "$out/app.tar.gz" app.py
  artifacts: ["*.txt", "*.tar.gz"]
"""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit(repo: Path, path: str, content: str, subject: str) -> str:
    (repo / path).write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", subject)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "shop"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    git(path, "config", "user.name", "Ada Lovelace")
    git(path, "config", "user.email", "ada@example.com")
    (path / "shipyard.yaml").write_text(CONFIG)
    commit(path, "app.py", "PRICE = 10\n", "feat: first shop (#1)")
    commit(path, "app.py", "PRICE = 10\nDISCOUNT = 0.5\n", "feat: discounts (#2)")
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path / "data").start()
    yield s
    s.stop()


def test_first_start_prints_an_admin_token_once(server: ServerProcess, tmp_path: Path) -> None:
    assert server.admin_token.startswith("shy_")
    assert server.cli("whoami", "--json").json() == {
        "user": "admin",
        "role": "admin",
        "emails": [],
        "projects": [],
        "environments": [],
    }
    server.stop()
    again = ServerProcess(tmp_path / "data").start()
    try:
        assert again.admin_token == ""
    finally:
        again.stop()


def test_cut_build_pick_show(server: ServerProcess, repo: Path) -> None:
    added = server.cli("project", "add", str(repo), "--json")
    assert added.code == 0, added
    assert added.json()["mainline"] == "main"

    cut = server.cli("release", "cut", "shop", "--json")
    assert cut.code == 0, cut
    release = cut.json()
    tip = git(repo, "rev-parse", "main")
    assert (release["version"], release["branch"], release["base_sha"]) == (
        "1.0.0",
        "release/1.0.0",
        tip,
    )
    rc1 = release["candidates"][0]
    assert (rc1["name"], rc1["status"], rc1["sha"]) == ("1.0.0-rc.1", "built", tip)
    assert sorted(a["name"] for a in rc1["artifacts"]) == ["app.tar.gz", "build.txt"]
    assert all(a["digest"].startswith("sha256:") for a in rc1["artifacts"])
    assert git(repo, "rev-parse", "release/1.0.0") == tip
    assert git(repo, "status", "--porcelain") == ""

    fix = commit(repo, "app.py", "PRICE = 10\nDISCOUNT = 0.1\n", "fix: discount was 50% (#3)")
    picked = server.cli("release", "pick", "shop", "1.0.0", fix, "--json")
    assert picked.code == 0, picked
    rc2 = picked.json()
    assert (rc2["name"], rc2["status"]) == ("1.0.0-rc.2", "built")
    assert rc2["picks"][0]["source_sha"] == fix
    assert git(repo, "rev-parse", "release/1.0.0") == rc2["sha"]

    shown = server.cli("release", "show", "shop", "1.0.0", "--json").json()
    assert [c["name"] for c in shown["candidates"]] == ["1.0.0-rc.1", "1.0.0-rc.2"]
    subjects = [(e["subject"], e["pr"], e["type"], e["picked"]) for e in shown["changelog"]]
    assert subjects == [
        ("fix: discount was 50% (#3)", 3, "fix", True),
        ("feat: discounts (#2)", 2, "feat", False),
        ("feat: first shop (#1)", 1, "feat", False),
    ]
    log = server.cli("release", "log", "shop", "1.0.0-rc.2")
    assert log.code == 0

    text = server.cli("release", "show", "shop", "1.0.0")
    assert "1.0.0-rc.2" in text.out and "discount was 50%" in text.out

    kinds = [e["kind"] for e in server.cli("events", "--project", "shop", "--json").json()]
    assert kinds == [
        "project.added",
        "release.cut",
        "candidate.built",
        "release.picked",
        "candidate.built",
    ]
    built = server.cli("events", "--kind", "candidate", "--newest", "--limit", "1", "--json").json()
    assert [e["kind"] for e in built] == ["candidate.built"]
    older = server.cli(
        "events", "--kind", "candidate", "--before", str(built[0]["id"]), "--json"
    ).json()
    assert [e["kind"] for e in older] == ["candidate.built"] and older[0]["id"] < built[0]["id"]


def test_user_mistakes_are_one_line_errors_with_exit_codes(
    server: ServerProcess, repo: Path
) -> None:
    assert server.cli("project", "add", str(repo)).code == 0
    assert server.cli("release", "cut", "shop").code == 0
    branches_before = git(repo, "branch", "--list")

    unknown = server.cli("release", "cut", "shop", "--sha", "deadbeef")
    assert unknown.code == 3
    assert unknown.err.strip().splitlines()[0] == "error: unknown commit 'deadbeef'"
    assert "Traceback" not in unknown.err

    exists = server.cli("release", "cut", "shop", "--version", "1.0.0")
    assert exists.code == 4 and "release 1.0.0 already exists" in exists.err

    bad_version = server.cli("release", "cut", "shop", "--version", "1.0")
    assert bad_version.code == 5 and "is not semver" in bad_version.err

    no_token = server.cli("project", "list", token="")
    assert no_token.code == 6 and "no API token" in no_token.err

    missing = server.cli("release", "show", "shop", "9.9.9", "--json")
    assert missing.code == 3
    assert '"code": "not_found"' in missing.err
    assert git(repo, "branch", "--list") == branches_before


def test_roles_are_enforced(server: ServerProcess, repo: Path) -> None:
    viewer = server.cli("token", "create", "--user", "val", "--role", "viewer", "--json").json()[
        "token"
    ]
    assert server.cli("project", "add", str(repo)).code == 0
    denied = server.cli("release", "cut", "shop", token=viewer)
    assert denied.code == 6 and "val (viewer) may not release" in denied.err
    assert server.cli("release", "list", "shop", token=viewer).code == 0
    bad_role = server.cli("token", "create", "--user", "x", "--role", "root")
    assert bad_role.code == 5 and "unknown role 'root'" in bad_role.err
