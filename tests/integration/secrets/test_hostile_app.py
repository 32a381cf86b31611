"""A hostile app, deployed for real: what can it learn of the server that runs it?

The same probe runs as a build, as a `local` instance (a real process on 127.0.0.1) and as a
`command` hook. It dumps its environment, tries to list the data dir and to open the SQLite
file, the secrets key and the server's own /proc environment, and looks for any way to the
database (a URL or DSN in what it can read). Found on main before this: 34 server variables,
SHIPYARD_DATABASE_URL and the operator's SHIPYARD_TOKEN among them.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.bootstrap import Runtime, bootstrap
from shipyard.domain.auth import SYSTEM, Actor, Role
from shipyard.services import deployments, projects, releases, secrets, tokens
from tests.support.gitrepo import GitRepo
from tests.support.sample_service import PYTHON

pytestmark = pytest.mark.slow

ADA = Actor("ada", Role.DEPLOYER)
SECRET = "whsec_only-for-the-app-7f3a"

PROBE = r"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

T = json.load(open("targets.json"))


def attempt(label, fn):
    try:
        out = fn()
        return "ok: " + repr(out)[:80]
    except OSError as exc:
        return "denied: " + type(exc).__name__


def report():
    env = dict(os.environ)
    dsn = {k: v for k, v in env.items() if "postgres" in v or "sqlite" in v or k.startswith("PG")}
    return {
        "uid": os.getuid(),
        "env": env,
        "dsn_found": dsn,
        "list data dir": attempt("ls", lambda: os.listdir(T["data_dir"])),
        "open database file": attempt("db", lambda: open(T["db_file"], "rb").read(16)),
        "open secrets key": attempt("key", lambda: open(T["key_file"], "rb").read(8)),
        "server environ": attempt(
            "environ", lambda: open(f"/proc/{T['server_pid']}/environ", "rb").read(64)
        ),
    }


if sys.argv[1:] == ["--once"]:
    print(json.dumps(report()))
    sys.exit(0)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/healthz" else json.dumps(report()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""

CONFIG = f"""\
project: shop
versioning: {{scheme: semver, initial: 1.0.0}}
build:
  command: >-
    {PYTHON} probe.py --once > "$SHIPYARD_ARTIFACTS_DIR/build-report.json" &&
    tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" probe.py targets.json
  artifacts: ["*.tar.gz", "build-report.json"]
environments:
  - name: production
    env: {{GREETING: hello}}
    target:
      kind: local
      start: {PYTHON} probe.py
      artifact: app.tar.gz
      health_timeout: 20
  - name: hooks
    env: {{GREETING: hello}}
    target:
      kind: command
      deploy: >-
        tar xzf "$SHIPYARD_ARTIFACT_APP_TAR_GZ_PATH" &&
        {PYTHON} probe.py --once > hook-report.json
"""

# what the server's own environment holds in this trial: none of it may reach the probe
SERVER_ONLY = ("SHIPYARD_DATABASE_URL", "SHIPYARD_TOKEN", "SHIPYARD_DATA_DIR", "AWS_SECRET_KEY")


@pytest.fixture
def rt(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Runtime, dict[str, str]]]:
    if os.geteuid() != 0:
        pytest.skip("runs deployed code as another user: needs root")
    data = tmp_path / "data"
    sqlite = database_url.startswith("sqlite")
    url = f"sqlite:///{data / 'shipyard.db'}" if sqlite else database_url  # the default place
    runtime = bootstrap(data, url, work_dir=tmp_path / "work")
    admin = tokens.create_token(runtime.services, SYSTEM, user="root", role="admin")[1]
    server_env = {
        "SHIPYARD_DATABASE_URL": url,
        "SHIPYARD_TOKEN": admin,
        "SHIPYARD_DATA_DIR": str(data),
        "AWS_SECRET_KEY": "server-own-cloud-key",
    }
    for name, value in server_env.items():
        monkeypatch.setenv(name, value)
    targets = {
        "data_dir": str(data),
        "db_file": str(data / "shipyard.db"),
        "key_file": str(data / "secrets.key"),
        "server_pid": os.getpid(),
    }
    repo = GitRepo(tmp_path / "shop")
    repo.commit(
        "chore: a hostile app",
        {"shipyard.yaml": CONFIG, "probe.py": PROBE, "targets.json": json.dumps(targets)},
    )
    projects.add_project(runtime.services, SYSTEM, str(repo.path))
    secrets.set_secret(runtime.services, ADA, "shop", "production", "WEBHOOK_SECRET", SECRET)
    secrets.set_secret(runtime.services, ADA, "shop", "hooks", "WEBHOOK_SECRET", SECRET)
    try:
        yield runtime, server_env
    finally:
        runtime.services.targets("local").stop_all(  # type: ignore[attr-defined]
            runtime.services.state_dir / "shop" / "production"
        )
        runtime.close()


def _assert_contained(report: dict[str, Any], server_env: dict[str, str], secret: bool) -> None:
    env = report["env"]
    assert report["uid"] != 0, "deployed code ran as root"
    for name, value in server_env.items():
        assert name not in env
        assert all(value not in v for v in env.values()), f"{name}'s value reached the app"
    assert report["dsn_found"] == {}
    for probe in ("list data dir", "open database file", "open secrets key", "server environ"):
        assert report[probe].startswith("denied"), f"{probe}: {report[probe]}"
    assert env.get("HOME") != os.environ.get("HOME")
    if secret:
        assert env["WEBHOOK_SECRET"] == SECRET
        assert env["GREETING"] == "hello"
    else:
        assert "WEBHOOK_SECRET" not in env  # builds are per candidate, not per environment


def test_hostile_build_instance_and_hook_learn_nothing_of_the_server(
    rt: tuple[Runtime, dict[str, str]],
) -> None:
    runtime, server_env = rt
    _, rc = releases.cut_release(runtime.services, ADA, "shop")
    runtime.worker().drain()
    with runtime.services.uow() as uow:
        built = uow.releases.get_candidate_by_id(rc.id)
    assert built.status.value == "built"
    [build_report] = [a for a in built.artifacts if a.name == "build-report.json"]
    report = json.loads(runtime.services.artifacts.path(build_report.digest).read_text())
    _assert_contained(report, server_env, secret=False)
    assert report["env"]["SHIPYARD_PROJECT"] == "shop"

    deployments.deploy(runtime.services, ADA, "shop", rc.name, "production")
    runtime.worker().drain()
    [inst] = runtime.services.targets("local").running(
        "shop", "production", runtime.services.state_dir / "shop" / "production"
    )
    with urllib.request.urlopen(f"http://{inst.address}/report", timeout=10) as resp:
        report = json.loads(resp.read())
    _assert_contained(report, server_env, secret=True)
    assert report["env"]["SHIPYARD_ENVIRONMENT"] == "production"
    assert report["env"]["SHIPYARD_CANDIDATE"] == rc.name

    deployments.deploy(runtime.services, ADA, "shop", rc.name, "hooks")
    runtime.worker().drain()
    hook_report = runtime.services.work_dir / "shop" / "hooks" / "hooks" / "hook-report.json"
    report = json.loads(hook_report.read_text())
    _assert_contained(report, server_env, secret=True)
    assert report["env"]["SHIPYARD_TO_CANDIDATE"] == rc.name
