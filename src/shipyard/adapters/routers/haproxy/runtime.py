"""The Runtime API client: one command at a time on a running HAProxy's CLI sockets.

Every read and write of live state goes through here: servers (address, weight, state), maps
(shown, or replaced atomically with ``prepare map`` / ``commit map``), ``show stat`` rows and the
latency table. It knows the socket protocol and HAProxy's answers, nothing about plans.
"""

from __future__ import annotations

import csv
import io
import socket
from collections.abc import Mapping
from pathlib import Path

from shipyard.adapters.routers.haproxy.layout import Layout, Slot, layout_from_meta
from shipyard.adapters.routers.validate import LATENCY_BOUNDS
from shipyard.errors import AdapterError

_REFUSALS = (
    *("unknown", "not found", "no such", "error", "invalid", "denied"),
    *("can't", "cannot", "failed", "missing", "require", "not allowed"),
)


def send(sock_path: Path, command: str, *, timeout: float = 5.0, master: bool = False) -> str:
    """One command on a CLI socket; the master CLI waits for our half-close before answering."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(sock_path))
            sock.sendall(command.encode() + b"\n")
            if master:
                sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise AdapterError(f"haproxy socket {sock_path}: {command.split()[0]}: {exc}") from exc
    return b"".join(chunks).decode(errors="replace")


def as_int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


class RuntimeApi:
    """The worker's admin socket (``stats socket ... level admin``)."""

    def __init__(self, admin: Path) -> None:
        self.admin = admin

    def command(self, command: str) -> str:
        """Send ``command``; an answer that is a refusal raises AdapterError with its line."""
        out = send(self.admin, command)
        first = out.strip().split("\n", 1)[0]
        low = first.lower()
        if command.startswith("show ") and not low.startswith(("unknown", "can't")):
            return out
        if any(word in low for word in _REFUSALS):
            raise AdapterError(f"haproxy refused {command!r}: {first}")
        return out

    def info(self, timeout: float = 2.0) -> dict[str, str]:
        out = send(self.admin, "show info", timeout=timeout)
        return {k: v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}

    def worker_pid(self) -> int | None:
        pid = self.info().get("Pid")
        return int(pid) if pid and pid.isdigit() else None

    # -- servers --------------------------------------------------------------------------------
    def set_server(self, name: str, setting: str, backend: str = "be") -> None:
        self.command(f"set server {backend}/{name} {setting}")

    def servers(self) -> dict[str, Slot]:
        """Backend ``be``'s servers as HAProxy holds them now."""
        out = self.command("show servers state be")
        lines = [line for line in out.splitlines() if line.strip()]
        header = next((line[2:].split() for line in lines if line.startswith("# be_id")), None)
        if header is None:
            raise AdapterError("haproxy answered `show servers state` without a header")
        slots: dict[str, Slot] = {}
        for line in lines:
            if line.startswith("#") or len(line.split()) < len(header) - 1:
                continue
            row = dict(zip(header, line.split(), strict=False))
            admin = int(row.get("srv_admin_state", "0"))
            slots[row["srv_name"]] = Slot(
                host=row["srv_addr"],
                port=int(row.get("srv_port", "0")),
                weight=int(row["srv_uweight"]),
                # no forced maintenance (CMAINT 0x04 only marks "disabled" in the config)
                enabled=(admin & 0x01) == 0,
            )
        return slots

    def stats(self) -> list[dict[str, str]]:
        text = self.command("show stat").lstrip("# ")
        return [row for row in csv.DictReader(io.StringIO(text)) if row.get("pxname")]

    def status(self, backend: str = "be") -> dict[str, str]:
        """Server name -> its check status (``UP``, ``DOWN``, ``MAINT``...)."""
        return {
            row["svname"]: row.get("status", "") for row in self.stats() if row["pxname"] == backend
        }

    # -- maps -----------------------------------------------------------------------------------
    def show_map(self, map_path: Path) -> dict[str, str]:
        entries: dict[str, str] = {}
        for line in self.command(f"show map {map_path}").splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3:
                entries[parts[1]] = parts[2]
        return entries

    def prepare_map(self, map_path: Path, entries: Mapping[str, str]) -> str:
        """A new, uncommitted version of the map holding ``entries``; returns its number.

        HAProxy checks every entry here (a bad regex is refused), before anything is live."""
        out = self.command(f"prepare map {map_path}")
        version = out.strip().rsplit(":", 1)[-1].strip()
        if not version.isdigit():
            raise AdapterError(f"haproxy prepare map answered {out.strip()!r}")
        for key, value in entries.items():
            cli = f"{key} {value}".replace("\\", "\\\\")  # the CLI eats one level of backslashes
            self.command(f"add map @{version} {map_path} {cli}")
        return version

    def commit_map(self, map_path: Path, version: str) -> None:
        self.command(f"commit map @{version} {map_path}")

    def replace_map(self, map_path: Path, entries: Mapping[str, str]) -> None:
        """Swap a map's whole content atomically: prepare, fill, commit (HAProxy >= 2.4)."""
        self.commit_map(map_path, self.prepare_map(map_path, entries))

    # -- what is live ---------------------------------------------------------------------------
    def layout(self, meta: Path) -> Layout:
        """meta.map and the servers, read back from the process."""
        found = layout_from_meta(self.show_map(meta))
        found.slots = self.servers()
        return found

    def latency_table(self, table: str) -> dict[str, tuple[int, ...]] | None:
        """Requests per latency bucket per slot group; None when the proxy keeps no table."""
        out = self.command(f"show table {table}")
        if not out.startswith("# table:"):
            return None  # a proxy started from an older config
        rows: dict[str, tuple[int, ...]] = {}
        for line in out.splitlines()[1:]:
            fields = dict(word.partition("=")[::2] for word in line.split()[1:] if "=" in word)
            counts = [as_int(fields.get(f"gpc{i}")) for i in range(len(LATENCY_BOUNDS))]
            if fields.get("key"):
                rows[fields["key"]] = tuple(counts)
        return rows
