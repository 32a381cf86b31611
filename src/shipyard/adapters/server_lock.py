"""One server per data dir: an OS file lock on ``<data dir>/server.lock`` held while it runs.

``flock`` locks go away with their process, however it dies (kill -9 included), so a stale
lock never blocks a restart. A server on SQLite holds it exclusively: two engines ticking the
same rollouts from one database and one data dir is the thing to prevent. Servers on one
PostgreSQL that share a data dir (their engines coordinate through leases) hold it shared, so
they still start side by side, while a SQLite server on that dir is refused."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from shipyard.errors import ConflictError

LOCK_FILE = "server.lock"


class DataDirInUse(ConflictError):
    def __init__(self, directory: Path, holder: str) -> None:
        super().__init__(
            f"{directory} is in use by another shipyard server (pid {holder})",
            details={"data_dir": str(directory), "pid": holder},
        )


class ServerLock:
    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)


def hold(directory: Path, *, exclusive: bool) -> ServerLock:
    """Take the data dir's lock without waiting; DataDirInUse names the holder's pid."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise DataDirInUse(directory, holder) from None
    if exclusive:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    else:  # shared holders each add their pid; the file names them all
        held = os.pread(fd, 4096, 0).decode(errors="replace").split()
        alive = [p for p in held if p.isdigit() and Path(f"/proc/{p}").exists()]
        text = " ".join([*alive, str(os.getpid())])
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{text}\n".encode(), 0)
    return ServerLock(fd, path)
