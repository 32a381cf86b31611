"""Where one environment's HAProxy keeps its files and sockets (see docs/routers.md).

HAProxy refuses a unix socket path longer than ``SOCKET_PATH_MAX`` bytes (2.6: "socket path ...
too long (max 97)", for ``stats socket`` and the master CLI alike; sun_path is 108 bytes and it
keeps room for a temporary suffix). A state dir too deep for that keeps its sockets in a short
private directory under the system's temporary directory, named after the state dir.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from hashlib import sha1
from pathlib import Path

SOCKET_PATH_MAX = 97  # measured with haproxy 2.6.12: 97 bytes start, 98 are refused
SEGMENT_MAPS = ("hdr", "hval", "hre", "path")
_SOCKETS = ("admin.sock", "master.sock")


@dataclass(frozen=True, slots=True)
class Paths:
    cfg: Path
    lua: Path
    meta: Path
    hdr: Path
    hval: Path
    hre: Path
    path: Path
    pid: Path
    log: Path
    admin: Path
    master: Path

    def segment_map(self, name: str) -> Path:
        """One of ``SEGMENT_MAPS`` by name."""
        found: Path = getattr(self, name)
        return found

    @property
    def short_socket_dir(self) -> bool:
        return self.admin.parent != self.cfg.parent


def fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= SOCKET_PATH_MAX


def socket_dir(state_dir: Path) -> Path:
    """``state_dir`` itself when its sockets fit, else the short private directory (made)."""
    if all(fits(state_dir / name) for name in _SOCKETS):
        return state_dir
    digest = sha1(str(state_dir).encode(), usedforsecurity=False).hexdigest()[:16]
    base = Path(tempfile.gettempdir())
    if not fits(base / f"shipyard-haproxy-{digest}" / "master.sock"):
        base = Path("/tmp")  # a TMPDIR as deep as the state dir
    short = base / f"shipyard-haproxy-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short


def paths_for(state_dir: Path) -> Paths:
    d = state_dir.resolve()
    sock = socket_dir(d)
    return Paths(
        cfg=d / "haproxy.cfg",
        lua=d / "mirror.lua",
        meta=d / "meta.map",
        hdr=d / "hdr.map",
        hval=d / "hval.map",
        hre=d / "hre.map",
        path=d / "path.map",
        pid=d / "haproxy.pid",
        log=d / "haproxy.log",
        admin=sock / "admin.sock",
        master=sock / "master.sock",
    )
