"""User-provided deploy/health/rollback commands: Ansible, Helm, kubectl, scp, anything."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from shipyard.adapters import children
from shipyard.adapters.child_process import (
    UserArgs,
    UserIdentity,
    child_env,
    files_root,
    hand_over,
    identity_for,
    open_dir,
)
from shipyard.adapters.targets.verify import verify_artifacts
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.targets import (
    ArtifactFile,
    Deployed,
    DeployMode,
    DeploySpec,
    Identity,
    Instance,
)

MAX_LOG = 64_000
IDENTIFY_TIMEOUT = 10.0  # seconds the `identify:` hook may take (status waits for it)


def _recorded(spec: DeploySpec) -> dict[str, Any]:
    return {
        "project": spec.project,
        "environment": spec.environment,
        "version": spec.version,
        "sha": spec.sha,
        "settings": dict(spec.settings),
        "run_as": spec.run_as,  # the identify hook runs as the deploy hook did
    }


def _tail(out: str, lines: int = 3) -> str:
    return " | ".join(out.strip().splitlines()[-lines:])


def _number(settings: Mapping[str, Any], key: str, default: float, environment: str) -> float:
    value = settings.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidError(
            f"environment {environment}: target `{key}:` must be a number, not {value!r}"
        ) from None


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _hook_dir(spec: DeploySpec, identity: UserIdentity | None) -> Path:
    """Where hooks run: a folder of the environment's work dir that their user owns."""
    where = open_dir(files_root(spec.work_dir, spec.state_dir) / "hooks")
    hand_over(where, identity)
    return where


def _readable_copies(spec: DeploySpec, identity: UserIdentity | None) -> tuple[ArtifactFile, ...]:
    """The artifact store sits in the server's 0700 data dir: a hook's user reads copies of the
    (already verified) files in the work dir, one per digest."""
    if identity is None:
        return spec.artifacts  # the hooks run as the server: the store is theirs to read
    root = files_root(spec.work_dir, spec.state_dir)
    out = []
    for a in spec.artifacts:
        folder = root / "artifacts" / a.digest.removeprefix("sha256:")
        copy = folder / (Path(a.name).name or "artifact")
        if not copy.is_file():
            open_dir(folder)
            tmp = folder / f".{copy.name}.tmp"
            shutil.copyfile(a.path, tmp)
            tmp.chmod(0o644)
            os.replace(tmp, copy)
        out.append(ArtifactFile(a.name, a.digest, copy))
    return tuple(out)


class CommandTarget:
    kind: ClassVar[str] = "command"

    def _env(self, spec: DeploySpec, identity: UserIdentity | None) -> dict[str, str]:
        env = dict(spec.env) | {
            "SHIPYARD_MODE": spec.mode.value,
            "SHIPYARD_FROM_CANDIDATE": spec.from_candidate or "",
            "SHIPYARD_TO_CANDIDATE": spec.candidate,
            "SHIPYARD_VERSION": spec.version,
            "SHIPYARD_SHA": spec.sha,
            "SHIPYARD_ENVIRONMENT": spec.environment,
            "SHIPYARD_PROJECT": spec.project,
            "SHIPYARD_ARTIFACTS": "\n".join(str(a.path) for a in spec.artifacts),
        }
        for a in spec.artifacts:
            env[f"SHIPYARD_ARTIFACT_{_env_name(a.name)}_PATH"] = str(a.path)
            env[f"SHIPYARD_ARTIFACT_{_env_name(a.name)}_DIGEST"] = a.digest
        return child_env(env, identity)

    def _run(
        self,
        what: str,
        command: str,
        spec: DeploySpec,
        timeout: float,
        identity: UserIdentity | None,
    ) -> str:
        # Its own session, so a timeout stops the whole group: killing only /bin/sh (what
        # subprocess.run does) leaves the command's children, say a hung ansible, running on.
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            env=self._env(spec, identity),
            cwd=_hook_dir(spec, identity),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **(identity.popen() if identity else UserArgs()),
        )
        try:
            with children.current().track(proc.pid, f"{what} hook"):  # reaped after a crash
                raw, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            raw, _ = proc.communicate()
            tail = _tail(raw.decode(errors="replace"))
            raise AdapterError(
                f"{what} command timed out after {timeout:g}s" + (f": {tail}" if tail else "")
            ) from None
        out = raw.decode(errors="replace")[-MAX_LOG:]
        if proc.returncode != 0:
            raise AdapterError(f"{what} command exited with status {proc.returncode}: {_tail(out)}")
        return out

    def deploy(self, spec: DeploySpec) -> Deployed:
        verify_artifacts(spec)
        identity = identity_for(spec.run_as)
        spec = dataclasses.replace(spec, artifacts=_readable_copies(spec, identity))
        settings = spec.settings
        deploy_cmd = settings.get("deploy")
        if not isinstance(deploy_cmd, str) or not deploy_cmd:
            raise InvalidError(
                f"environment {spec.environment}: target kind command needs `deploy:`"
            )
        timeout = _number(settings, "timeout", 600, spec.environment)
        health_timeout = _number(settings, "health_timeout", 60, spec.environment)
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        rollback_cmd = settings.get("rollback")
        use = (
            rollback_cmd
            if spec.mode is DeployMode.ROLLBACK and isinstance(rollback_cmd, str) and rollback_cmd
            else deploy_cmd
        )
        log = self._run(spec.mode.value, use, spec, timeout, identity)
        health = settings.get("health")
        if isinstance(health, str) and health:
            log += self._wait_healthy(health, spec, health_timeout, identity)
        tmp = spec.state_dir / ".current.json.tmp"  # replaced whole: running() never reads half
        # what running() needs to ask the identify hook later, in the same environment
        tmp.write_text(json.dumps({"candidate": spec.candidate, **_recorded(spec)}))
        os.replace(tmp, spec.state_dir / "current.json")
        return Deployed(spec.candidate, (Instance(spec.candidate, spec.environment),), log)

    def _wait_healthy(
        self, command: str, spec: DeploySpec, timeout: float, identity: UserIdentity | None
    ) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            try:
                left = max(1.0, deadline - time.monotonic())
                return self._run("health", command, spec, left, identity)
            except AdapterError as exc:
                last = exc.message
            if time.monotonic() >= deadline:
                raise AdapterError(
                    f"{spec.candidate} did not become healthy within {timeout:g}s: {last}"
                )
            time.sleep(0.5)

    def retire(self, spec: DeploySpec, candidate: str) -> None:
        """The deploy command replaces the old version itself; nothing is left to stop.

        running() reports only the candidate the last successful deploy put in place, so a retired
        older candidate is already absent from it."""

    def running(self, project: str, environment: str, state_dir: Path) -> Sequence[Instance]:
        """What the `identify:` hook says runs; without one (or when it fails) the candidate the
        last successful deploy put in place, marked unverified: a command cannot be looked into."""
        try:
            saved = json.loads((state_dir / "current.json").read_text())
            candidate = str(saved["candidate"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return []
        named = self._identify(saved, state_dir)
        if named is None:
            return [Instance(candidate, environment, identity=Identity.UNVERIFIED)]
        return [Instance(named, environment)]

    def _identify(self, saved: Mapping[str, Any], state_dir: Path) -> str | None:
        """The last line the identify hook printed, or None when there is none or it failed."""
        settings = saved.get("settings")
        if not isinstance(settings, dict):
            return None
        command = settings.get("identify")
        if not isinstance(command, str) or not command:
            return None
        spec = DeploySpec(
            project=str(saved.get("project", "")),
            environment=str(saved.get("environment", "")),
            candidate=str(saved["candidate"]),
            version=str(saved.get("version", "")),
            sha=str(saved.get("sha", "")),
            mode=DeployMode.DEPLOY,
            from_candidate=None,
            artifacts=(),
            settings=settings,
            state_dir=state_dir,
            run_as=saved.get("run_as"),
        )
        try:
            timeout = _number(settings, "identify_timeout", IDENTIFY_TIMEOUT, spec.environment)
            out = self._run("identify", command, spec, timeout, identity_for(spec.run_as))
        except (AdapterError, InvalidError, OSError):
            return None
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        return lines[-1] if lines else None

    def configured(self, settings: Mapping[str, Any]) -> int | None:
        return None

    def close(self) -> None:
        return None
