"""A flag-routed rollout as a user drives it: real server, real CLI, real processes, no proxy.

`shipyard deploy` into an environment whose policy says `router: flag` ships the new code dark
and hands over to a rollout that moves the flag; `shipyard rollout status` shows the flag's
percentage. The "app" is the real SDK in this process: it polls the flag state, evaluates it for
a population of users, and reports its cohort counts to the server, which the judges read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.sdk import FlagClient, HttpFlagSource, HttpMetricsReporter
from tests.support import sample_service
from tests.support.gitrepo import GitRepo
from tests.support.server import ServerProcess, ok, rollout_status, running

KEY = "new-checkout"
USERS = [{"userId": f"user-{i}"} for i in range(20_000)]

CONFIG = f"""\
project: shop
versioning: {{initial: 1.0.0}}
build:
  command: tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" sample_service.py
  artifacts: ["*.tar.gz"]
environments:
  - name: production
    target: {{kind: local, start: "{sample_service.START}", health_timeout: 20}}
    policy: dark-launch
policies:
  dark-launch:
    router: flag
    flag: {KEY}
    steps:
      - set_weight: 0.5
      - analysis: {{checks: [errors], interval: 1s, duration: 2s}}
      - set_weight: 10
      - analysis: {{checks: [errors], interval: 1s, duration: 2s}}
checks:
  errors: {{metric: error_ratio, judge: threshold, threshold: {{max: 0.05}}}}
"""


class App:
    """The SDK as an app runs it: poll, evaluate every user, report the cohorts."""

    def __init__(self, url: str, token: str) -> None:
        source = HttpFlagSource(url, "shop", "production", token)
        reporter = HttpMetricsReporter(url, "shop", "production", token, app_name="web")
        self.client = FlagClient(source, refresh_interval=0, reporter=reporter, report_interval=0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            self.client.refresh()
            for u in USERS:
                self.client.is_enabled(KEY, u)
            self.client.report()

    def __enter__(self) -> App:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running(tmp_path / "data", {"production": None}, env={"SHIPYARD_LEASE_SECONDS": "3"}) as s:
        yield s


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "shop")
    r.commit(
        "feat: shop service (#1)",
        {"shipyard.yaml": CONFIG, "sample_service.py": Path(sample_service.__file__).read_text()},
    )
    return r


def test_deploy_moves_the_flag_and_status_shows_its_percentage(
    server: ServerProcess, repo: GitRepo
) -> None:
    ok(server.cli("project", "add", str(repo.path)))
    ok(server.cli("release", "cut", "shop"))
    missing = server.cli("deploy", "shop", "1.0.0-rc.1", "production")
    assert missing.code == 3 and "policy flag 'new-checkout' does not exist" in missing.err
    ok(server.cli("flag", "create", "shop", "production", KEY, "--enabled", "--rollout", "0"))
    token = ok(server.cli("token", "create", "--user", "web", "--role", "app", "--json"))
    with App(server.url, token.json()["token"]):
        d = ok(
            server.cli("deploy", "shop", "1.0.0-rc.1", "production", "--no-wait", "--json")
        ).json()
        r = rollout_status(server)
        assert (r["router"], r["flag"]) == ("flag", KEY)
        assert r["flag_percent"] in (0.5, 10.0)
        shown = ok(server.cli("rollout", "status", "shop", "production")).out
        assert f"flag {KEY} at " in shown and "% of users" in shown
        deadline = time.monotonic() + 60
        while r["phase"] not in ("promoted", "rolled_back"):
            assert time.monotonic() < deadline, r
            time.sleep(0.3)
            r = rollout_status(server)
    assert r["phase"] == "promoted" and r["flag_percent"] == 100.0
    assert r["deployment_id"] == d["id"]
    cohorts = {v["role"]: v for v in r["versions"]}
    assert cohorts["canary"]["requests"] > 0 and cohorts["stable"]["requests"] > 0
    flag = ok(server.cli("flag", "show", "shop", "production", KEY, "--json")).json()
    assert flag["rollout"] == 100.0
    assert [c["actor"] for c in flag["history"][:3]] == ["shipyard"] * 3
