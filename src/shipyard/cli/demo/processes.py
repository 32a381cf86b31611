"""The `shipyard serve` the demo drives, and stopping everything the demo started.

The server runs in its own session, so a Ctrl-C in the terminal reaches the demo only and the
demo decides the order: traffic first, then the server, then what the server leaves running on
purpose (HAProxy and the instances run detached, so a restarted server keeps serving; see
docs/rollouts.md), and last a sweep for any process still working in the demo's directory
(a build or an instance started in the instant the server was stopped).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from shipyard.cli.client import Client
from shipyard.cli.errors import CliError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoServer:
    """``shipyard serve`` on 127.0.0.1:``port`` with SQLite in ``state``, output in ``log``."""

    def __init__(self, state: Path, port: int, log: Path) -> None:
        self.state = state
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.admin_token = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        env = os.environ | {"PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
        env.pop("SHIPYARD_TOKEN", None)
        env.pop("SHIPYARD_DATABASE_URL", None)  # the demo is SQLite in its own directory
        argv = [sys.executable, "-m", "shipyard.cli.main", "serve", "--data-dir", str(self.state)]
        # the sample app's files sit in the demo's directory too (its sweep finds them); as root
        # they run as an unprivileged user, which must be able to pass through to them
        argv += ["--work-dir", str(self.state.parent / "work")]
        if os.geteuid() == 0:
            self.state.parent.chmod(0o711)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*argv, "--port", str(self.port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to the demo, which stops this in order
            )
        deadline = time.monotonic() + timeout
        self.admin_token = self._read_token(deadline)
        self._wait_ready(deadline)

    def _read_token(self, deadline: float) -> str:
        """The bootstrap admin token the server prints once, on its first start."""
        while time.monotonic() < deadline:
            self._check_alive()
            lines = self.log.read_text(errors="replace").splitlines()
            if any(line.startswith("Shipyard on http") for line in lines):
                token = next((line.strip() for line in lines if line.startswith("shy_")), "")
                if not token:
                    raise CliError("the server printed no admin token", "unavailable")
                return token
            time.sleep(0.05)
        raise CliError(f"the server did not start within the time; see {self.log}", "unavailable")

    def _wait_ready(self, deadline: float) -> None:
        client = Client(self.url, self.admin_token, timeout=2)
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(CliError):
                client.get("/healthz")
                return
            time.sleep(0.05)
        raise CliError(f"the server did not answer /healthz; see {self.log}", "unavailable")

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-10:])
            raise CliError(
                f"the server exited with {self.proc.returncode}", "unavailable", hint=tail
            )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM (uvicorn finishes its requests, the worker stops), SIGKILL after ``grace``."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def stop_environments(state: Path, project: str, routers: dict[str, int | None]) -> None:
    """Stop each environment's HAProxy (when it has a router) and instances.

    Run after the server stopped: its supervisor would otherwise restart the instances."""
    # the adapters load only here (through the composition root), so every other command
    # stays a thin client
    from shipyard.bootstrap import stop_environments as stop

    stop(state, project, routers)


def leftovers(root: Path) -> dict[int, str]:
    """Processes (not this one) working in ``root`` or naming a path inside it on their command
    line, with that command line: instances (their cwd), HAProxy (its config), builds. Read from
    Linux's /proc; elsewhere there are none to find."""
    prefix = str(root.resolve()) + os.sep
    found = {}
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd") + os.sep
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue  # gone meanwhile (or a zombie), or not ours to look at
        if cwd.startswith(prefix) or prefix in cmdline:
            found[pid] = cmdline.strip()
    return found


def _pids() -> Iterator[int]:
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                yield int(name)


def sweep(root: Path, grace: float = 3.0) -> dict[int, str]:
    """Stop every leftover in ``root`` (SIGTERM, then SIGKILL); return what it found."""
    found = leftovers(root)
    _signal(found, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and leftovers(root):
        time.sleep(0.05)
    _signal(leftovers(root), signal.SIGKILL)
    return found


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
