"""The process supervisor: start, check, reload and stop one HAProxy per environment.

HAProxy runs in master-worker mode (``-W -S master.sock``), detached in its own session, so it
outlives the Shipyard server that started it; a later server adopts it by its pid file and admin
socket. ``haproxy -c`` runs without ``-q`` so a refusal names HAProxy's own reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from shipyard.adapters.child_process import child_env
from shipyard.adapters.routers.haproxy.paths import Paths
from shipyard.adapters.routers.haproxy.runtime import RuntimeApi, send
from shipyard.adapters.tools import Tool
from shipyard.errors import AdapterError

HAPROXY = Tool("haproxy", "apt-get install haproxy")
START_TIMEOUT_S = 10.0


class Supervisor:
    """Owns the HAProxy processes this Shipyard started (and adopts those an earlier one did)."""

    def __init__(self, binary: str = "haproxy") -> None:
        self.binary = binary
        self._procs: dict[Path, subprocess.Popen[bytes]] = {}

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, check=False, env=_env(), timeout=30
            )
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise AdapterError(f"cannot run {self.binary}: {exc}") from exc

    def _missing(self) -> AdapterError:
        if self.binary == HAPROXY.name:
            return HAPROXY.error("router kind haproxy")
        return AdapterError(f"cannot run {self.binary}: not found")

    def check_config(self, cfg: Path) -> None:
        """``haproxy -c``; a refusal raises AdapterError with HAProxy's first alert."""
        result = self._run([self.binary, "-c", "-f", str(cfg)])
        if result.returncode != 0:
            raise AdapterError(f"haproxy -c rejected the config: {_reason(result)}")

    def running_pid(self, paths: Paths) -> int | None:
        """The master's pid when it is alive and its worker answers on the admin socket."""
        try:
            pid = int(paths.pid.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _alive(pid):
            return None
        try:
            RuntimeApi(paths.admin).info(timeout=2)
        except AdapterError:
            return None
        return pid

    def start(self, paths: Paths, listen_port: int, label: str) -> None:
        """Start HAProxy on ``paths.cfg`` and wait until it serves on ``listen_port``.

        Sockets a killed HAProxy left behind are fine: HAProxy binds a new one and renames it over
        the old path."""
        stale = self._procs.pop(paths.cfg.parent, None)
        if stale is not None:  # our child died: reap it before starting another
            _terminate(stale)
        argv = [self.binary, "-W", "-S", str(paths.master), "-f", str(paths.cfg)]
        argv += ["-p", str(paths.pid)]
        log = paths.log.open("ab")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_env(),
            )
        except FileNotFoundError as exc:
            raise self._missing() from exc
        except OSError as exc:
            raise AdapterError(f"cannot start {self.binary}: {exc}") from exc
        finally:
            log.close()
        self._procs[paths.cfg.parent] = proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AdapterError(
                    f"haproxy for {label} exited with {proc.returncode}: {_tail(paths.log)}"
                )
            if self.running_pid(paths) is not None and port_open(listen_port):
                return
            time.sleep(0.01)
        _terminate(proc)
        raise AdapterError(f"haproxy for {label} did not answer within {START_TIMEOUT_S:g}s")

    def reload(self, paths: Paths, label: str) -> None:
        """Hitless reload through the master CLI: a new worker on the same config file."""
        self.check_config(paths.cfg)
        api = RuntimeApi(paths.admin)
        before = api.worker_pid()
        send(paths.master, "reload", master=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(AdapterError):
                if api.worker_pid() not in (None, before):
                    return
            time.sleep(0.01)
        raise AdapterError(f"haproxy for {label} did not reload")

    def stop(self, paths: Paths) -> None:
        proc = self._procs.pop(paths.cfg.parent, None)
        if proc is not None:
            _terminate(proc)
        else:
            pid = self.running_pid(paths)
            if pid is not None:
                _kill(pid)
        paths.pid.unlink(missing_ok=True)
        for sock in (paths.admin, paths.master):
            sock.unlink(missing_ok=True)
        if paths.short_socket_dir:
            with contextlib.suppress(OSError):
                paths.admin.parent.rmdir()


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """One starter at a time per state dir across processes (two servers on one database)."""
    with (state_dir / ".lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _env() -> dict[str, str]:
    """HAProxy needs none of the server's configuration: the allowlist every child starts from."""
    return child_env({})


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    """HAProxy's first ALERT line without its ``[ALERT] (pid) :`` prefix; else its last line."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    alerts = [line for line in lines if line.startswith("[ALERT]")]
    picked = (alerts or lines or ["(no output)"])[0 if alerts else -1]
    if picked.startswith("["):
        picked = picked.split(":", 1)[-1].strip() if ") :" in picked else picked
    return picked


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our child after all (same process)
        time.sleep(0.01)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"
