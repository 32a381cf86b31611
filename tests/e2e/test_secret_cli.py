"""shipyard secret set | list | rm against a real server: the value goes in and never comes out."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gitrepo import GitRepo
from tests.support.server import ServerProcess, ok, running, sample_repo, sample_yaml

VALUE = "sk_live_51H-do-not-print-me"
CONFIG = sample_yaml("environments:\n  - name: production\n")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with running(tmp_path / "data", {}) as s:
        yield s


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return sample_repo(tmp_path / "shop", CONFIG, "repo")


def test_secret_set_list_rm_never_shows_the_value(server: ServerProcess, repo: GitRepo) -> None:
    ok(server.cli("project", "add", str(repo.path)))

    done = ok(server.cli("secret", "set", "shop", "production", "STRIPE_KEY", stdin=VALUE + "\n"))
    assert "STRIPE_KEY" in done.out
    listed = ok(server.cli("secret", "list", "shop", "production"))
    as_json = ok(server.cli("secret", "list", "shop", "production", "--json")).json()
    events = ok(server.cli("events", "--json"))
    assert "STRIPE_KEY" in listed.out and "admin" in listed.out
    assert [(s["name"], sorted(s)) for s in as_json] == [
        ("STRIPE_KEY", ["name", "set_at", "set_by"])
    ]
    for result in (done, listed, events):
        assert VALUE not in result.out + result.err

    viewer = ok(server.cli("token", "create", "--user", "vera", "--role", "viewer", "--json"))
    denied = server.cli(
        "secret", "set", "shop", "production", "X", token=viewer.json()["token"], stdin="v"
    )
    assert denied.code != 0 and "may not deploy" in denied.err
    bad = server.cli("secret", "set", "shop", "production", "SHIPYARD_TOKEN", stdin="v")
    assert bad.code != 0 and "reserved" in bad.err

    ok(server.cli("secret", "rm", "shop", "production", "STRIPE_KEY"))
    assert ok(server.cli("secret", "list", "shop", "production", "--json")).json() == []
    gone = server.cli("secret", "rm", "shop", "production", "STRIPE_KEY")
    assert gone.code != 0 and "no secret" in gone.err


def _controlling_tty() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _type_into(argv: list[str], env: dict[str, str], prompt: bytes, typed: bytes) -> bytes:
    """Run ``argv`` on a terminal of its own, type ``typed`` once ``prompt`` is on the screen
    (echo is off by then), and return the whole screen."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=_controlling_tty
    )
    os.close(slave)
    screen, sent = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    screen += os.read(master, 4096)
                except OSError:  # the program exited and closed the terminal
                    break
            elif proc.poll() is not None:
                break
            if not sent and prompt in screen:
                os.write(master, typed)
                sent = True
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        os.close(master)
    assert proc.returncode == 0, screen
    return screen


def test_from_a_terminal_the_value_is_asked_without_echo(
    server: ServerProcess, repo: GitRepo
) -> None:
    ok(server.cli("project", "add", str(repo.path)))
    env = os.environ | {
        "SHIPYARD_URL": server.url,
        "SHIPYARD_TOKEN": server.admin_token,
        "NO_COLOR": "1",
    }
    argv = [sys.executable, "-m", "shipyard.cli.main", "secret", "set", "shop", "production", "K"]

    screen = _type_into(argv, env, b"value of K: ", VALUE.encode() + b"\n")

    assert VALUE.encode() not in screen  # typed, never echoed
    assert b"set in shop/production" in screen
    assert [
        s["name"] for s in server.cli("secret", "list", "shop", "production", "--json").json()
    ] == ["K"]
