"""The server's short-lived children (builds, command hooks), written down so none outlives it.

Each child runs in its own process group and has a record in ``<data dir>/run/children`` while
it runs: its pid, its start time, the server's pid and start time, and its temp folders. When the
server stops it kills the groups it started; when a server starts it reaps what a dead server (a
``kill -9``) left: the groups still running and their temp folders. Records name process start
times (``/proc/<pid>/stat``) so a recycled pid is never taken for the child or the server.
Deployed apps are not children: they run on across restarts by design and are never reaped."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger("shipyard.children")

GRACE_S = 2.0


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 of stat(5), counted after the command name


def _group_members(pgid: int, since: int) -> list[int]:
    """Processes of group ``pgid`` started at or after ``since`` (the group's leader start)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and int(fields[19]) >= since:
            found.append(int(entry.name))
    return found


def kill_group(pgid: int, since: int, grace_s: float = GRACE_S) -> bool:
    """TERM then KILL what is left of the group; True when anything was there."""
    if not _group_members(pgid, since):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _group_members(pgid, since):
            time.sleep(0.05)
        if not _group_members(pgid, since):
            break
    return True


def _removable(folder: str) -> bool:
    """Only the temp folders Shipyard makes (``shipyard-*`` in the temp dir) are ever deleted."""
    path = Path(folder)
    return path.name.startswith("shipyard-") and path.parent == Path(tempfile.gettempdir())


class ChildLedger:
    """Records of running children under ``root``; ``None``: nothing is written (tests)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._mine: dict[int, tuple[int, str]] = {}  # pgid -> (start ticks, kind): this server's
        self._lock = threading.Lock()
        self._me = os.getpid()

    @contextlib.contextmanager
    def track(self, pid: int, kind: str, temps: Sequence[Path] = ()) -> Iterator[None]:
        """While the block runs, ``pid`` (a group leader) is a recorded child of this server."""
        ticks = start_ticks(pid) or 0
        record = {
            "pid": pid,
            "start": ticks,
            "kind": kind,
            "owner": self._me,
            "owner_start": start_ticks(self._me),
            "temps": [str(t) for t in temps],
        }
        path = self.root / f"{pid}.json" if self.root is not None else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record))
        with self._lock:
            self._mine[pid] = (ticks, kind)
        try:
            yield
        finally:
            with self._lock:
                self._mine.pop(pid, None)
            if path is not None:
                path.unlink(missing_ok=True)

    def stop_all(self, kind: str) -> int:
        """Kill the child groups of this kind this server started and still runs; how many."""
        with self._lock:
            mine = [(pgid, ticks) for pgid, (ticks, k) in self._mine.items() if k == kind]
        return sum(kill_group(pgid, ticks) for pgid, ticks in mine)

    def reap(self) -> list[str]:
        """Kill the children of dead servers and delete their temp folders; what was reaped."""
        if self.root is None or not self.root.is_dir():
            return []
        done = []
        for path in sorted(self.root.glob("*.json")):
            try:
                record = json.loads(path.read_text())
                owner, owner_start = int(record["owner"]), record.get("owner_start")
                pid, ticks = int(record["pid"]), int(record["start"])
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            if owner_start is not None and start_ticks(owner) == owner_start:
                continue  # its server is alive (another server on this data dir): not ours
            killed = kill_group(pid, ticks)
            for folder in record.get("temps", []):
                if _removable(folder):
                    shutil.rmtree(folder, ignore_errors=True)
            path.unlink(missing_ok=True)
            what = f"{record.get('kind', 'child')} process group {pid}"
            done.append(f"{what} {'killed' if killed else 'already gone'}")
            log.warning("reaped %s left by dead server %s", what, owner)
        return done


_current = ChildLedger(None)


def use(ledger: ChildLedger) -> None:
    """Make ``ledger`` the one builds and hooks record into (bootstrap calls this)."""
    global _current
    _current = ledger


def current() -> ChildLedger:
    return _current
