"""Runs a build command on this machine, in a clean worktree, and collects what it leaves."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path

from shipyard.adapters import children
from shipyard.adapters.child_process import UserArgs, child_env, hand_over, identity_for
from shipyard.ports.builds import BuildInterrupted, BuildRequest, BuildResult, BuiltFile


def _kill_group(proc: subprocess.Popen[bytes], grace_s: float = 2.0) -> None:
    """TERM the whole process group (the shell and what it started), KILL what lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


class LocalBuilder:
    """Runs ``/bin/sh -c command`` in its own session so a timeout can kill all it spawned.

    Each build is recorded in the child ledger while it runs (adapters/children.py), so a
    server that stops kills it and a server that starts after a crash reaps it."""

    def __init__(self, ledger: children.ChildLedger | None = None) -> None:
        self._ledger = ledger or children.ChildLedger(None)
        self._stops = 0  # how many times stop() ran: a build running across one was interrupted
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Kill the builds running now; later ones run as usual (a worker may start again)."""
        with self._lock:
            self._stops += 1
        self._ledger.stop_all("build")

    def _stopped_since(self, stops: int) -> bool:
        with self._lock:
            return self._stops != stops

    def run(self, request: BuildRequest) -> BuildResult:
        with self._lock:
            stops = self._stops
        request.artifacts_dir.mkdir(parents=True, exist_ok=True)
        identity = identity_for(request.run_as)
        env = child_env(
            dict(request.env) | {"SHIPYARD_ARTIFACTS_DIR": str(request.artifacts_dir)}, identity
        )
        if identity is not None:
            # the checkout and the output folder are the build's own; their (private) temporary
            # parents are opened for passing through, not for listing
            try:
                for tree in (request.source_dir, request.artifacts_dir):
                    hand_over(tree, identity)
                    parent = tree.parent.stat()
                    if parent.st_uid == os.geteuid() and parent.st_mode & 0o777 == 0o700:
                        tree.parent.chmod(0o711)
            except OSError as exc:  # as without run_as: a result, not an exception
                return BuildResult(False, None, f"build command could not start: {exc}", ())
        request.log_path.parent.mkdir(parents=True, exist_ok=True)
        with request.log_path.open("ab") as log:
            log.write(f"$ {request.command}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", request.command],
                    cwd=request.source_dir,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    **(identity.popen() if identity else UserArgs()),
                )
            except OSError as exc:
                return BuildResult(False, None, f"build command could not start: {exc}", ())
            temps = (request.source_dir.parent, request.artifacts_dir)
            with self._ledger.track(proc.pid, "build", temps):
                try:
                    code = proc.wait(timeout=request.timeout_s)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    log.write(f"\nshipyard: timed out after {request.timeout_s:g}s\n".encode())
                    return BuildResult(False, None, f"timed out after {request.timeout_s:g}s", ())
                finally:
                    if self._stopped_since(stops):
                        _kill_group(proc)
            if self._stopped_since(stops):
                log.write(
                    b"\nshipyard: the server stopped; the build runs again on its next start\n"
                )
                raise BuildInterrupted(request.command)
        if code < 0:
            return BuildResult(False, code, f"build command was killed by signal {-code}", ())
        if code != 0:
            return BuildResult(False, code, f"build command exited with status {code}", ())
        return BuildResult(True, 0, "", tuple(self._collect(request)))

    def _collect(self, request: BuildRequest) -> list[BuiltFile]:
        root = request.artifacts_dir
        real_root = root.resolve()
        found: dict[str, Path] = {}
        for pattern in request.artifact_globs:
            for path in root.glob(pattern):
                inside = path.resolve().is_relative_to(real_root)
                if inside and path.is_file() and not path.is_symlink():
                    found[path.relative_to(root).as_posix()] = path
        return [BuiltFile(name, found[name]) for name in sorted(found)]
