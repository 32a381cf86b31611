"""Kill -9 the server in the middle of a deployment: the restarted server finishes it, and the
auto-promotion that follows happens exactly once."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.gitrepo import GitRepo
from tests.support.server import ServerProcess

# the hooks get $LOG from the environment's env: (never from the server's environment), and
# append to a file their (unprivileged, when the tests run as root) user may write
CONFIG = """\
project: shop
build: {command: 'tar czf "$SHIPYARD_ARTIFACTS_DIR/app.tar.gz" app.py'}
environments:
  - name: staging
    env: {LOG: "@LOG@"}
    target:
      kind: command
      deploy: 'echo "$SHIPYARD_TO_CANDIDATE" >> "$LOG"; sleep 2; echo done >> "$LOG"'
  - name: production
    auto_promote: true
    env: {LOG: "@LOG@"}
    target: {kind: command, deploy: 'echo "prod $SHIPYARD_TO_CANDIDATE" >> "$LOG"'}
"""


def test_a_killed_server_resumes_the_deployment_and_promotes_once(tmp_path: Path) -> None:
    log = tmp_path / "deploys.log"
    log.touch(0o666)
    log.chmod(0o666)
    env = {"SHIPYARD_LEASE_SECONDS": "2"}
    repo = GitRepo(tmp_path / "shop")
    config = CONFIG.replace("@LOG@", str(log))
    repo.commit("feat: shop (#1)", {"shipyard.yaml": config, "app.py": "x = 1\n"})
    server = ServerProcess(tmp_path / "data", env=env).start()
    token = server.admin_token
    try:
        assert server.cli("project", "add", str(repo.path)).code == 0
        assert server.cli("release", "cut", "shop").code == 0
        asked = server.cli("deploy", "shop", "0.1.0-rc.1", "staging", "--no-wait", "--json")
        assert asked.code == 0, asked
        deadline = time.monotonic() + 10
        while not log.stat().st_size and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill9()  # mid-deploy: the command is sleeping
    finally:
        server.stop()

    again = ServerProcess(tmp_path / "data", env=env)
    again.admin_token = token
    again.start()
    try:
        deadline = time.monotonic() + 30
        states: list[tuple[str, str]] = []
        while time.monotonic() < deadline:
            history = again.cli("history", "shop", "--json").json()
            states = sorted((d["environment"], d["state"]) for d in history)
            if states == [("production", "succeeded"), ("staging", "succeeded")]:
                break
            time.sleep(0.2)
        assert states == [("production", "succeeded"), ("staging", "succeeded")]
        time.sleep(1)  # give a duplicate the chance to appear
        assert len(again.cli("history", "shop", "--json").json()) == 2
        lines = log.read_text().splitlines()
        assert lines.count("prod 0.1.0-rc.1") == 1
        assert lines[-1] == "prod 0.1.0-rc.1"
        assert lines.count("0.1.0-rc.1") == 2  # started, killed, run again after the lease expired
        kinds = [e["kind"] for e in again.cli("events", "--project", "shop", "--json").json()]
        assert kinds.count("deployment.succeeded") == 2
    finally:
        again.stop()
