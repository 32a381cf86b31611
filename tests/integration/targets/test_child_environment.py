"""What a deployed process starts with (adapters/child_process.py), read from /proc as it runs."""

from __future__ import annotations

import dataclasses
import os
import pwd
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

from shipyard.adapters.child_process import APP_USER, child_env, identity_for
from shipyard.adapters.targets.local import LocalTarget
from shipyard.errors import InvalidError
from tests.integration.targets.conftest import spec_for
from tests.integration.targets.test_local import wait_for

SERVER = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "TZ": "Europe/Berlin",
    "HOME": "/root",
    "SHIPYARD_DATABASE_URL": "postgresql://shipyard:pw@db/shipyard",
    "SHIPYARD_TOKEN": "shy_operator",
    "AWS_SECRET_ACCESS_KEY": "cloud",
    "PYTHONPATH": "/srv/server-code",
}

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if item)


def test_only_the_allowlist_and_what_is_given_reach_a_child() -> None:
    env = child_env({"GREETING": "hi", "LANG": "de_DE.UTF-8"}, source=SERVER)
    assert env == {
        "PATH": "/usr/bin:/bin",
        "LANG": "de_DE.UTF-8",  # what is given wins
        "TZ": "Europe/Berlin",
        "HOME": "/root",
        "GREETING": "hi",
    }


def test_a_child_without_path_still_finds_programs() -> None:
    assert child_env({}, source={})["PATH"] == "/usr/local/bin:/usr/bin:/bin"


@as_root
def test_a_root_server_runs_children_as_its_system_user() -> None:
    who = identity_for(None)
    assert who is not None and who.name == APP_USER and who.uid != 0
    assert pwd.getpwnam(APP_USER).pw_shell.endswith("nologin")
    env = child_env({}, who, source=SERVER)
    assert (env["HOME"], env["USER"], env["LOGNAME"]) == (who.home, APP_USER, APP_USER)
    assert identity_for(None) == who  # made once


def test_run_as_naming_nobody_known_is_refused() -> None:
    with pytest.raises(InvalidError, match="no user 'no-such-user-42'"):
        identity_for("no-such-user-42")


@as_root
def test_a_supervised_restart_after_a_server_restart_keeps_env_and_user(
    local: LocalTarget, state_dir: Path, artifacts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SERVER.items():
        if name != "PATH":
            monkeypatch.setenv(name, value)
    spec = dataclasses.replace(
        spec_for(state_dir, "c1", artifacts("1.0.0")),
        env={"GREETING": "hi", "API_KEY": "from-a-secret"},
        run_as="nobody",
    )
    [first] = local.deploy(spec).instances
    assert first.pid is not None
    seen = environ_of(first.pid)
    assert (seen["GREETING"], seen["API_KEY"], seen["USER"]) == ("hi", "from-a-secret", "nobody")
    assert not {"SHIPYARD_DATABASE_URL", "SHIPYARD_TOKEN", "AWS_SECRET_ACCESS_KEY"} & set(seen)
    assert os.stat(f"/proc/{first.pid}").st_uid == pwd.getpwnam("nobody").pw_uid
    state = state_dir / "instances.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600  # it holds the instances' secrets
    local.close()

    restarted = LocalTarget()  # a restarted server: it knows only the state file
    try:
        restarted.running("shop", "staging", state_dir)
        os.kill(first.pid, signal.SIGKILL)

        def again() -> int | None:
            now = restarted.running("shop", "staging", state_dir)
            return next((i.pid for i in now if i.pid != first.pid and i.healthy), None)

        wait_for(again, 15)
        pid = again()
        assert pid is not None
        after = environ_of(pid)
        assert (after["API_KEY"], after["USER"]) == ("from-a-secret", "nobody")
        assert os.stat(f"/proc/{pid}").st_uid == pwd.getpwnam("nobody").pw_uid
    finally:
        restarted.close()
