"""Runs a build command on this machine, in a clean worktree, and collects what it leaves."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from shipyard.ports.builds import BuildRequest, BuildResult, BuiltFile

_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")


class LocalBuilder:
    def run(self, request: BuildRequest) -> BuildResult:
        request.artifacts_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k in _KEEP}
        env |= dict(request.env) | {"SHIPYARD_ARTIFACTS_DIR": str(request.artifacts_dir)}
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
                )
            except OSError as exc:
                return BuildResult(False, None, f"build command could not start: {exc}", ())
            try:
                code = proc.wait(timeout=request.timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                log.write(f"\nshipyard: timed out after {request.timeout_s:g}s\n".encode())
                return BuildResult(False, None, f"timed out after {request.timeout_s:g}s", ())
        if code != 0:
            return BuildResult(False, code, f"build command exited with status {code}", ())
        return BuildResult(True, 0, "", tuple(self._collect(request)))

    def _collect(self, request: BuildRequest) -> list[BuiltFile]:
        root = request.artifacts_dir
        found: dict[str, Path] = {}
        for pattern in request.artifact_globs:
            for path in root.glob(pattern):
                if path.is_file() and not path.is_symlink():
                    found[path.relative_to(root).as_posix()] = path
        return [BuiltFile(name, found[name]) for name in sorted(found)]
