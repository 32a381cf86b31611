"""One server per data dir, a taken port refused before the banner, and no build outliving its
server: a stopped server kills its builds, a server started after a kill -9 reaps them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.gitrepo import GitRepo
from tests.support.reachable import writable
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.slow
EXIT_IN_USE = 12


def serve(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"NO_COLOR": "1"}
    env.pop("SHIPYARD_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "shipyard.cli.main", "serve", "--data-dir", str(data_dir)]
    return subprocess.run(
        [*cmd, "--port", str(port)], env=env, capture_output=True, text=True, timeout=60
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_for(what: str, ok: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(ok) and ok():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_second_server_on_one_data_dir_is_refused_naming_the_first_ones_pid(
    tmp_path: Path,
) -> None:
    first = ServerProcess(tmp_path / "data").start()
    try:
        assert first.proc is not None
        second = serve(tmp_path / "data", free_port())
    finally:
        first.stop()
    assert second.returncode == EXIT_IN_USE, second
    lines = (second.stdout + second.stderr).strip().splitlines()
    assert lines == [
        f"error: {tmp_path / 'data'} is in use by another shipyard server (pid {first.proc.pid})"
    ]
    ServerProcess(tmp_path / "data").start().stop()  # the lock went with the first server


def test_a_port_in_use_is_refused_before_the_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = serve(tmp_path / "data", port)
    assert done.returncode == EXIT_IN_USE, done
    out = (done.stdout + done.stderr).strip().splitlines()
    assert out == [f"error: cannot listen on 127.0.0.1:{port}: the address is already in use"]


CONFIG = """\
project: shop
build:
  command: 'echo $$ > "$PIDS/build.pid"; sleep 30; tar czf "$SHIPYARD_ARTIFACTS_DIR/a.tgz" app.py'
  artifacts: ["*.tgz"]
  env: {PIDS: "%s"}
environments:
  - name: staging
    target: {kind: command, deploy: "true"}
"""


def test_builds_die_with_their_server_and_a_kill_9_leaves_none_behind(tmp_path: Path) -> None:
    pids = writable(tmp_path / "pids")  # the build runs as the app user and writes its pid
    pidfile = pids / "build.pid"
    env = {"SHIPYARD_LEASE_SECONDS": "2"}
    repo = GitRepo(tmp_path / "shop")
    repo.commit("feat: shop", {"shipyard.yaml": CONFIG % pids, "app.py": "x = 1\n"})
    data = tmp_path / "data"
    server = ServerProcess(data, env=env).start()
    token = server.admin_token
    try:
        assert server.cli("project", "add", str(repo.path)).code == 0
        assert server.cli("release", "cut", "shop", "--no-wait").code == 0
        wait_for("the build to start", pidfile.exists)
        wait_for("its pid", lambda: pidfile.read_text().strip().isdigit())
        orphan = int(pidfile.read_text())
        records = data / "run" / "children"
        wait_for("its record", lambda: any(records.glob("*.json")), timeout=5)
        (record,) = records.glob("*.json")
        temps = json.loads(record.read_text())["temps"]
        assert temps and all(Path(t).is_dir() for t in temps)
        server.kill9()
    finally:
        server.stop()
    assert alive(orphan)  # what main leaves behind: the build runs on without its server

    pidfile.unlink()
    again = ServerProcess(data, env=env)
    again.admin_token = token
    again.start()
    try:
        assert not alive(orphan)  # reaped before the new server said it is up
        assert not any(Path(t).exists() for t in temps)
        assert any("reaped build process group" in line for line in again.output)
        wait_for("the build to run again", pidfile.exists)  # its job's lease ran out
        wait_for("its pid", lambda: pidfile.read_text().strip().isdigit())
        rerun = int(pidfile.read_text())
        assert alive(rerun)
    finally:
        started = time.monotonic()
        again.stop()
    assert time.monotonic() - started < 10
    wait_for("the build to die with its server", lambda: not alive(rerun), timeout=5)
    assert not list((data / "run" / "children").glob("*.json"))


HOOKED = """\
project: shop
build: {command: 'tar czf "$SHIPYARD_ARTIFACTS_DIR/a.tgz" app.py', artifacts: ["*.tgz"]}
environments:
  - name: staging
    target: {kind: command, deploy: 'echo $$ > "%s"; sleep 30'}
"""


def test_a_deploy_hook_a_killed_server_left_running_is_reaped_at_the_next_start(
    tmp_path: Path,
) -> None:
    pidfile = writable(tmp_path / "out") / "hook.pid"  # the hook runs as the app user
    repo = GitRepo(tmp_path / "shop")
    repo.commit("feat: shop", {"shipyard.yaml": HOOKED % pidfile, "app.py": "x = 1\n"})
    data = tmp_path / "data"
    env = {"SHIPYARD_LEASE_SECONDS": "60"}  # the restarted server does not run the hook again
    server = ServerProcess(data, env=env).start()
    token = server.admin_token
    try:
        assert server.cli("project", "add", str(repo.path)).code == 0
        assert server.cli("release", "cut", "shop").code == 0  # waits for the build
        asked = server.cli("deploy", "shop", "0.1.0-rc.1", "staging", "--no-wait")
        assert asked.code == 0, asked
        wait_for("the hook to start", lambda: pidfile.exists() and pidfile.read_text().strip())
        hook = int(pidfile.read_text())
        server.kill9()
    finally:
        server.stop()
    assert alive(hook)
    again = ServerProcess(data, env=env)
    again.admin_token = token
    again.start()
    try:
        assert not alive(hook)
        assert any("reaped deploy hook process group" in line for line in again.output)
    finally:
        again.stop()
