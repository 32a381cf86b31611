"""The embedded default target: run the artifact as N local processes on 127.0.0.1.

The new version starts beside the old one and the old one is stopped only after the new one is
healthy. Instances are recorded in a state file so a restarted server finds (and can stop) them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from shipyard.adapters.child_process import (
    UserArgs,
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

STATE = "instances.json"
SUPERVISE_EVERY = 1.0  # seconds between checks for dead instances of the current candidate
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when an instance is stopped
BACKOFF_FIRST = 0.5  # wait before the 2nd restart in a row of one instance; doubles each time
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # an instance that lived this long after a restart starts a fresh series


# Instances listen on 127.0.0.1: health checks go there directly, whatever http_proxy says.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    """True while the process exists and has not exited: a zombie (exited, not yet reaped by its
    parent or by PID 1) answers kill(0) but is dead, so /proc is asked where it exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (or the pid vanished just now): trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def _started_at(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None.

    Recorded beside each pid: after a reboot, or long after an instance died, its pid may belong
    to another process, which must then be neither reported nor signalled."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None


def _identity(pid: int) -> str | None:
    """The SHIPYARD_CANDIDATE the live process was started with (/proc/PID/environ), or None
    when it cannot be read: what runs is read from the process, not from our own records."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for entry in raw.split(b"\0"):
        if entry.startswith(b"SHIPYARD_CANDIDATE="):
            return entry.split(b"=", 1)[1].decode(errors="replace")
    return None


def _launches(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What it takes to restart each candidate's instances, by candidate.

    State files written before ``launches`` existed kept only the last deploy's ``spec``."""
    found: dict[str, dict[str, Any]] = dict(state.get("launches") or {})
    legacy = state.get("spec") or {}
    if legacy.get("candidate") and legacy["candidate"] not in found:
        found[str(legacy["candidate"])] = dict(legacy)
    return found


def _number(settings: Any, key: str, default: float, environment: str) -> float:
    value = settings.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidError(
            f"environment {environment}: target `{key}:` must be a number, not {value!r}"
        ) from None
    return number


def _probe(port: int, path: str, timeout: float = 1.0) -> str | None:
    """None when GET path answers 200, else what went wrong (for the deploy's error message)."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with _DIRECT.open(url, timeout=timeout) as resp:
            return None if resp.status == 200 else f"{url} answered {resp.status}"
    except urllib.error.HTTPError as exc:
        exc.close()
        return f"{url} answered {exc.code}"
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        return f"{url}: {reason}"


def _healthy(port: int, path: str, timeout: float = 1.0) -> bool:
    return _probe(port, path, timeout) is None


def _group_alive(pgid: int) -> bool:
    """True while any process of the group has not exited (zombies do not count)."""
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:  # no /proc: ask the kernel, which also counts zombies
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _stop_group(pid: int, grace: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the instance's process group, wait until all of it exited, SIGKILL what remains.

    The leader is reaped (polled when it is our child): PID 1 here reaps orphans slowly."""

    def reap() -> None:
        if proc is not None:
            proc.poll()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        if not _group_alive(pid):
            break
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
    else:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


_COMPOUND = re.compile(r"[;&|()`{}\n]|^\s*(\w+=|if\b|for\b|while\b|until\b|case\b|!)")


def _shell(start: str) -> list[str]:
    """`exec` a simple command, so the recorded pid is the service itself; a compound one
    (`cd app && ./run`) runs under sh, and stopping the process group stops it all."""
    return ["/bin/sh", "-c", start if _COMPOUND.search(start) else f"exec {start}"]


def _backoff(restarts: int) -> float:
    """Seconds to wait after `restarts` restarts in a row before the next one."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, restarts - 1)))


def _check_member(archive: str, member: str, dest: Path) -> None:
    """Refuse absolute names and names that climb out of dest (no silent rewriting)."""
    parts = member.replace("\\", "/").split("/")
    target = (dest / member).resolve()
    if member.startswith(("/", "\\")) or ".." in parts or not target.is_relative_to(dest):
        raise InvalidError(f"artifact {archive} holds an unsafe path {member!r}")


def _unpack(name: str, archive: Path, dest: Path) -> None:
    """tar/zip are extracted with their paths checked; any other file is copied as is.

    The format and a copied file's name come from the artifact's recorded name: the bytes sit in
    the artifact store under their digest, with no extension."""
    root = dest.resolve()
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as tar:
                for info in tar.getmembers():
                    _check_member(name, info.name, root)
                tar.extractall(root, filter="data")  # also refuses links pointing outside
        elif name.endswith(".zip"):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    _check_member(name, member, root)
                z.extractall(root)
        else:
            if name in ("", ".", "..") or "/" in name or "\\" in name:
                raise InvalidError(f"artifact name {name!r} is not a plain file name")
            shutil.copy2(archive, root / name)
    except (tarfile.TarError, zipfile.BadZipFile) as exc:  # FilterError is a TarError
        raise InvalidError(f"artifact {name} cannot be unpacked: {exc}") from exc


def _chosen_artifacts(spec: DeploySpec) -> tuple[ArtifactFile, ...]:
    """The `artifact:` setting names the one to unpack; without it every artifact is."""
    wanted = spec.settings.get("artifact")
    if wanted is None:
        return spec.artifacts
    chosen = tuple(a for a in spec.artifacts if a.name == wanted)
    if not chosen:
        names = ", ".join(a.name for a in spec.artifacts) or "none"
        raise InvalidError(
            f"environment {spec.environment}: target `artifact: {wanted}` is not an artifact of "
            f"{spec.candidate} (it has: {names})"
        )
    return chosen


class LocalTarget:
    kind: ClassVar[str] = "local"

    def __init__(self) -> None:
        # Re-entrant: the supervisor holds it across a restart, which registers the new Popen.
        self._lock = threading.RLock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        # environments whose recorded instances are kept running (every candidate in them)
        self._supervised: set[Path] = set()
        # (state_dir, port) -> (restarts in a row, monotonic time of the last one): backoff
        self._restarts: dict[tuple[Path, int], tuple[int, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._supervise, name="shipyard-local-target", daemon=True
        )
        self._thread.start()

    # -- state file ---------------------------------------------------------------------------
    def _read(self, state_dir: Path) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((state_dir / STATE).read_text())
            return data
        except (FileNotFoundError, ValueError):
            return {"current": None, "instances": []}

    def _write(self, state_dir: Path, data: dict[str, Any]) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / f".{STATE}.tmp"
        tmp.touch(0o600)  # it holds the instances' environment, secrets included
        tmp.write_text(json.dumps(data, indent=2, default=str))
        os.replace(tmp, state_dir / STATE)

    # -- processes ----------------------------------------------------------------------------
    def _start(
        self, spec: DeploySpec, workdir: Path, port: int, index: int
    ) -> subprocess.Popen[bytes]:
        start = spec.settings.get("start")
        if not isinstance(start, str) or not start:
            raise InvalidError(f"environment {spec.environment}: target kind local needs `start:`")
        identity = identity_for(spec.run_as)
        given = dict(spec.env) | {
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "SHIPYARD_PROJECT": spec.project,
            "SHIPYARD_ENVIRONMENT": spec.environment,
            "SHIPYARD_CANDIDATE": spec.candidate,
            "SHIPYARD_VERSION": spec.version,
            "SHIPYARD_SHA": spec.sha,
            "SHIPYARD_INSTANCE": str(index),
        }
        env = child_env(given, identity)
        log = (spec.state_dir / f"{spec.candidate}.{index}.log").open("ab")
        try:
            proc = subprocess.Popen(
                _shell(start),
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **(identity.popen() if identity else UserArgs()),
            )
        finally:
            log.close()
        with self._lock:
            self._procs[proc.pid] = proc
        return proc

    def _is_running(self, pid: int) -> bool:
        """Our own children are polled (which reaps them): kill(0) says a zombie is alive."""
        with self._lock:
            proc = self._procs.get(pid)
        if proc is not None:
            return proc.poll() is None
        return _alive(pid)

    def _ours(self, inst: dict[str, Any]) -> bool:
        """Is the recorded pid still the process we started (not a reuse of the number)?"""
        pid = int(inst["pid"])
        with self._lock:
            if pid in self._procs:
                return True
        recorded = inst.get("started")
        actual = _started_at(pid)
        return recorded is None or actual is None or actual == recorded

    def _kill_instance(self, inst: dict[str, Any]) -> None:
        if self._ours(inst):
            self._kill(int(inst["pid"]))

    def _kill(self, pid: int) -> None:
        with self._lock:
            proc = self._procs.pop(pid, None)
        _stop_group(pid, STOP_GRACE, proc)

    def _free_ports(self, state_dir: Path, count: int) -> list[int]:
        """Distinct ports, none of them already recorded for this environment."""
        with self._lock:
            taken = {int(i["port"]) for i in self._read(state_dir)["instances"]}
        ports: list[int] = []
        while len(ports) < count:
            port = free_port()
            if port not in taken:
                taken.add(port)
                ports.append(port)
        return ports

    # -- port ---------------------------------------------------------------------------------
    def deploy(self, spec: DeploySpec) -> Deployed:
        verify_artifacts(spec)
        start = spec.settings.get("start")
        if not isinstance(start, str) or not start:
            raise InvalidError(f"environment {spec.environment}: target kind local needs `start:`")
        instances = int(_number(spec.settings, "instances", 1, spec.environment))
        if instances < 1:
            raise InvalidError(
                f"environment {spec.environment}: target `instances:` must be at least 1"
            )
        health = str(spec.settings.get("health", "/healthz"))
        if not health.startswith("/"):
            raise InvalidError(
                f"environment {spec.environment}: target `health:` must be a path such as "
                f"/healthz, not {health!r}"
            )
        timeout = _number(spec.settings, "health_timeout", 30, spec.environment)
        unpack = _chosen_artifacts(spec)
        # A fresh directory per attempt: redeploying the candidate that runs now must not pull
        # the files out from under its instances.
        # in a folder the instances' user can reach: not the server's own 0700 data dir
        spec.state_dir.mkdir(parents=True, exist_ok=True)
        root = files_root(spec.work_dir, spec.state_dir)
        workdir = open_dir(root / spec.candidate) / f"{time.time_ns():x}"
        workdir.mkdir(mode=0o755)
        started: list[tuple[subprocess.Popen[bytes], int]] = []
        try:
            for a in unpack:
                _unpack(a.name, a.path, workdir)
            hand_over(workdir, identity_for(spec.run_as))  # the instances' own copy
            for i, port in enumerate(self._free_ports(spec.state_dir, instances)):
                started.append((self._start(spec, workdir, port, i), port))
            self._wait_healthy(spec, started, health, timeout)
        except BaseException:
            for proc, _ in started:
                self._kill(proc.pid)
            shutil.rmtree(workdir, ignore_errors=True)
            with contextlib.suppress(OSError):
                workdir.parent.rmdir()  # only if no other copy of this candidate is there
            raise
        with self._lock:
            state = self._read(spec.state_dir)
            replaced = [i for i in state["instances"] if i["candidate"] == spec.candidate]
            state["instances"] = [
                i for i in state["instances"] if i["candidate"] != spec.candidate
            ] + [
                {
                    "candidate": spec.candidate,
                    "port": port,
                    "pid": proc.pid,
                    "index": n,
                    "workdir": str(workdir),
                    "started": _started_at(proc.pid),
                }
                for n, (proc, port) in enumerate(started)
            ]
            state["current"] = spec.candidate
            for _, port in started:
                self._restarts.pop((spec.state_dir, port), None)
            launch = {
                "health": health,
                "settings": dict(spec.settings),
                # enough to restart an instance after a server restart (see _restart_dead)
                "project": spec.project,
                "environment": spec.environment,
                "candidate": spec.candidate,
                "version": spec.version,
                "sha": spec.sha,
                "workdir": str(workdir),
                # a restarted instance gets its environment and user back (the file is 0600)
                "env": dict(spec.env),
                "run_as": spec.run_as,
                "work_dir": str(spec.work_dir) if spec.work_dir else None,
            }
            state["launches"] = _launches(state) | {spec.candidate: launch}
            state["spec"] = launch
            self._write(spec.state_dir, state)
            self._supervised.add(spec.state_dir)
        # A redeploy of the same candidate: its earlier instances are now replaced, so stop them.
        for inst in replaced:
            self._kill_instance(inst)
        for old_dir in {str(i.get("workdir", "")) for i in replaced} - {"", str(workdir)}:
            shutil.rmtree(old_dir, ignore_errors=True)
        return Deployed(
            spec.candidate,
            tuple(
                Instance(spec.candidate, f"127.0.0.1:{port}", proc.pid) for proc, port in started
            ),
            f"started {instances} instance(s) of {spec.candidate} on "
            + ", ".join(f"127.0.0.1:{p}" for _, p in started)
            + "\n",
        )

    def _wait_healthy(
        self,
        spec: DeploySpec,
        started: list[tuple[subprocess.Popen[bytes], int]],
        path: str,
        timeout: float,
    ) -> None:
        deadline = time.monotonic() + timeout
        pending = {port: proc for proc, port in started}
        index = {port: n for n, (_, port) in enumerate(started)}
        previous = spec.from_candidate or "the previous version"
        last = "no answer yet"
        while pending:
            for port, proc in list(pending.items()):
                if proc.poll() is not None:
                    log = spec.state_dir / f"{spec.candidate}.{index[port]}.log"
                    raise AdapterError(
                        f"{spec.candidate} exited with status {proc.returncode} before it was "
                        f"healthy (see {log}); {previous} keeps serving"
                    )
                problem = _probe(port, path)
                if problem is None:
                    del pending[port]
                else:
                    last = problem
            if pending and time.monotonic() > deadline:
                raise AdapterError(
                    f"{spec.candidate} did not become healthy on {path} within {timeout:g}s: "
                    f"{last}; {previous} keeps serving"
                )
            if pending:
                time.sleep(0.05)

    def retire(self, spec: DeploySpec, candidate: str) -> None:
        with self._lock:
            state = self._read(spec.state_dir)
            doomed = [i for i in state["instances"] if i["candidate"] == candidate]
            state["instances"] = [i for i in state["instances"] if i["candidate"] != candidate]
            launches = _launches(state)
            launches.pop(candidate, None)
            state["launches"] = launches
            if state.get("spec", {}).get("candidate") == candidate:
                state.pop("spec", None)
            if state.get("current") == candidate:
                # what keeps running is what should run: a canary rolled back leaves the stable
                left = [i["candidate"] for i in state["instances"] if i["candidate"] in launches]
                state["current"] = left[-1] if left else None
            self._write(spec.state_dir, state)
        for inst in doomed:
            self._kill_instance(inst)
        shutil.rmtree(spec.state_dir / candidate, ignore_errors=True)
        shutil.rmtree(files_root(spec.work_dir, spec.state_dir) / candidate, ignore_errors=True)

    def running(self, project: str, environment: str, state_dir: Path) -> Sequence[Instance]:
        state = self._read(state_dir)
        self._adopt(state_dir, state)
        launches = _launches(state)
        found = []
        for i in state["instances"]:
            pid = int(i["pid"])
            if not (self._is_running(pid) and self._ours(i)):
                continue
            health = str(launches.get(i["candidate"], {}).get("health", "/healthz"))
            named = _identity(pid)
            found.append(
                Instance(
                    named or i["candidate"],
                    f"127.0.0.1:{i['port']}",
                    pid,
                    _healthy(int(i["port"]), health),
                    Identity.VERIFIED if named else Identity.UNVERIFIED,
                )
            )
        return found

    def configured(self, settings: Mapping[str, Any]) -> int | None:
        try:
            return int(float(settings.get("instances", 1)))
        except (TypeError, ValueError):
            return None

    def stop_all(self, state_dir: Path) -> None:
        """Stop every instance this environment runs (demo and test clean-up)."""
        with self._lock:
            state = self._read(state_dir)
            self._supervised.discard(state_dir)
            self._write(state_dir, {"current": None, "instances": []})
        for inst in state["instances"]:
            self._kill_instance(inst)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    # -- supervision --------------------------------------------------------------------------
    def _adopt(self, state_dir: Path, state: dict[str, Any]) -> None:
        """Supervise what an earlier server started here: a restarted server resumes watching an
        environment the first time it asks what runs there (the engine asks at start)."""
        if not state["instances"] or not _launches(state):
            return
        with self._lock:
            if not self._stop.is_set():
                self._supervised.add(state_dir)

    def _supervise(self) -> None:
        """Restart dead instances of every candidate recorded as running, on their ports."""
        while not self._stop.wait(SUPERVISE_EVERY):
            with self._lock:
                watched = list(self._supervised)
            for state_dir in watched:
                with contextlib.suppress(Exception):
                    self._restart_dead(state_dir)

    @staticmethod
    def _launch_spec(state_dir: Path, saved: Mapping[str, Any]) -> tuple[DeploySpec, Path]:
        spec = DeploySpec(
            project=str(saved["project"]),
            environment=str(saved["environment"]),
            candidate=str(saved["candidate"]),
            version=str(saved["version"]),
            sha=str(saved["sha"]),
            mode=DeployMode.DEPLOY,
            from_candidate=None,
            artifacts=(),
            settings=dict(saved.get("settings") or {}),
            state_dir=state_dir,
            env={str(k): str(v) for k, v in (saved.get("env") or {}).items()},
            run_as=saved.get("run_as"),
            work_dir=Path(saved["work_dir"]) if saved.get("work_dir") else None,
        )
        return spec, Path(saved["workdir"])

    def _restart_dead(self, state_dir: Path) -> None:
        # Decide and restart under the lock: retire/stop_all/deploy rewrite the state under it,
        # so an instance they are stopping is never brought back untracked.
        with self._lock:
            if self._stop.is_set() or state_dir not in self._supervised:
                return
            state = self._read(state_dir)
            launches = _launches(state)
            changed = False
            for inst in state["instances"]:
                pid = int(inst["pid"])
                saved = launches.get(inst["candidate"])
                if saved is None or not saved.get("workdir"):
                    continue
                ours = self._ours(inst)
                if ours and self._is_running(pid):
                    continue
                port = int(inst["port"])
                count, last = self._restarts.get((state_dir, port), (0, 0.0))
                now = time.monotonic()
                if count and now - last > STABLE_AFTER + _backoff(count):
                    count = 0  # it ran fine for a while: this death starts a new series
                if count and now < last + _backoff(count):
                    continue  # crash-looping: wait before trying again
                # The leader died; whatever it started (still holding the port?) goes with it.
                if ours:  # a reused pid is somebody else's: leave its group alone
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                old = self._procs.pop(pid, None)
                if old is not None:
                    old.wait(1)
                spec, workdir = self._launch_spec(state_dir, saved)
                proc = self._start(spec, workdir, port, int(inst["index"]))
                self._restarts[(state_dir, port)] = (count + 1, now)
                inst["pid"] = proc.pid
                inst["started"] = _started_at(proc.pid)
                inst["restarts"] = int(inst.get("restarts", 0)) + 1
                changed = True
            if changed:
                self._write(state_dir, state)
