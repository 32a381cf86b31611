"""The one place that decides what a child process (instance, command hook, build) starts with.

A child gets a small allowlist of the server's environment (PATH, locale, time zone...), then
what it is given (the environment's ``env:``, its secrets, the deployment's ``SHIPYARD_*``
variables), and runs as an unprivileged user when the server is root. Nothing else of the
server's environment reaches it: not its database URL, not an operator's token.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from shipyard.errors import AdapterError, InvalidError

ALLOWED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_COLLATE",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "TMPDIR",
    "TERM",
)
"""Server variables a child may see: how to find programs, speak, and tell the time."""

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
APP_USER = "shipyard-app"
"""The system user deployed code runs as when the server is root and ``run_as:`` names none."""


class UserArgs(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """Who a child runs as."""

    name: str
    uid: int
    gid: int
    home: str

    def popen(self) -> UserArgs:
        """``subprocess.Popen`` arguments that drop to this user (supplementary groups cleared)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


_made_lock = threading.Lock()


def _system_user(name: str) -> pwd.struct_passwd:
    """The dedicated user, made once (``useradd --system``) if this machine has none yet."""
    with _made_lock:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        home = f"/var/lib/{name}"
        done = subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--create-home",
                "--home-dir",
                home,
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            env={"PATH": DEFAULT_PATH},
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise AdapterError(
                f"could not create the system user {name} for deployed code: "
                f"{done.stderr.strip() or done.returncode}"
            ) from None


def identity_for(run_as: str | None) -> UserIdentity | None:
    """The user a child runs as; None means as the server itself (which is then not root).

    A root server never runs deployed code as root unless ``run_as: root`` says so."""
    me = os.geteuid()
    if run_as is None:
        if me != 0:
            return None
        pw = _system_user(APP_USER)
    else:
        try:
            pw = pwd.getpwnam(run_as)
        except KeyError:
            raise InvalidError(f"run_as: there is no user {run_as!r} on this machine") from None
        if pw.pw_uid == me and me != 0:
            return None  # already that user; setgroups would need root
        if me != 0:
            raise InvalidError(
                f"run_as: {run_as} needs the server to run as root "
                f"(it runs as {pwd.getpwuid(me).pw_name})"
            )
    return UserIdentity(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)


def child_env(
    given: Mapping[str, str],
    identity: UserIdentity | None = None,
    *,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allowlisted part of the server's environment, then ``given`` (which wins)."""
    env = os.environ if source is None else source
    out = {k: env[k] for k in ALLOWED if k in env}
    out.setdefault("PATH", DEFAULT_PATH)
    if identity is not None:
        out |= {"HOME": identity.home, "USER": identity.name, "LOGNAME": identity.name}
    return out | dict(given)


def hand_over(path: Path, identity: UserIdentity | None) -> None:
    """Give a directory tree the child must write into (a build's checkout) to its user."""
    if identity is None:
        return
    os.chown(path, identity.uid, identity.gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), identity.uid, identity.gid, follow_symlinks=False)


def files_root(work_dir: Path | None, state_dir: Path) -> Path:
    """Where a child's own files go (unpacked candidates, hooks' folder and artifact copies):
    the work dir bootstrap names, which the children's user can reach (the state dir sits in the
    0700 data dir); a target used on its own, without one, uses the state dir."""
    return state_dir if work_dir is None else work_dir


def open_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) a folder every user may enter and read, not write."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for p in missing:
        p.chmod(0o755)
    return path
