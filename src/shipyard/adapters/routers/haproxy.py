"""HAProxy in front of one environment, driven through its Runtime API (no reload to move traffic).

Layout of ``route.state_dir`` (see docs/routers.md):

- ``mirror.lua``   the mirror actions (copies of stable traffic to the canary, answers dropped)
- ``haproxy.cfg``  generated; carries the live addresses, weights and enabled slots, so a reload or
  a restart comes back with the last applied plan
- ``meta.map``     which candidate holds which slot group, the exact canary weight, the segment
- ``hdr.map``      regexes over the request header block (header and cookie segments)
- ``hval.map``     a regex that extracts one header's value (header segments with a regex)
- ``hre.map``      the segment's own regex, run over that value
- ``path.map``     path prefixes (path segments)
- ``haproxy.pid``  the master's pid; ``haproxy.log`` its output
- ``admin.sock``   the worker's stats socket (level admin); ``master.sock`` the master CLI

Two slot groups, ``a`` and ``b``, each of ``slots`` servers in backend ``be``. A candidate keeps its
group for as long as it is in the plan, so promoting the canary only relabels a group and moves
weights: no address of a server carrying traffic changes. ``be_a``/``be_b`` hold the same slots
(tracking ``be``'s health) for the segment route, which sends matching requests to the canary's
group whatever the weights.

Latencies: the frontend notes the time when a request's headers (and body) are in and when the
server's response headers arrive, and counts the difference into one of ``LATENCY_BOUNDS``'
buckets: a stick table ``shipyard_latency`` keyed by slot group, one ``gpc`` per bucket. The
counters live in HAProxy (they survive a restart of Shipyard, not a reload of HAProxy), cost no
Lua and no log parsing, and ``show table`` reads them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import sha1
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote, unquote

from shipyard.adapters.child_process import child_env
from shipyard.adapters.routers.validate import (
    LATENCY_BOUNDS,
    check_plan,
    cumulative_buckets,
    parse_address,
)
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.routers import (
    Backend,
    Capability,
    Counters,
    RoutePlan,
    RouteRef,
    SegmentMatch,
)

GROUPS = ("a", "b")
MIRROR_LUA = r"""-- Written by Shipyard: copies a sample of the requests the stable served to the canary.
-- txn.shipyard_mirror is "<canary group>:<stable group>:<percent>" (from meta.map). The copy is
-- sent from a background task once the stable has answered; the canary's answer is dropped.
core.register_action("shipyard_mirror_req", {"http-req"}, function(txn)
  local v = txn:get_var("txn.shipyard_mirror")
  if not v then return end
  local canary, stable, pct = v:match("^(%a):(%a):([%d.]+)$")
  if not canary or math.random() * 100 >= tonumber(pct) then return end
  local lines = {txn.sf:method() .. " " .. txn.sf:pathq() .. " HTTP/1.1"}
  for name, vals in pairs(txn.http:req_get_headers()) do
    if name ~= "connection" then
      for _, val in pairs(vals) do lines[#lines + 1] = name .. ": " .. val end
    end
  end
  lines[#lines + 1] = "x-shipyard-mirror: 1"
  lines[#lines + 1] = "connection: close"
  local req = table.concat(lines, "\r\n") .. "\r\n\r\n" .. (txn.sf:req_body() or "")
  txn:set_priv({canary = canary, stable = stable, req = req})
end)

core.register_action("shipyard_mirror_res", {"http-res"}, function(txn)
  local p = txn:get_priv()
  if type(p) ~= "table" then return end
  local served = txn.sf:srv_name()
  if not served or served:sub(1, 1) ~= p.stable then return end
  local be = core.backends["be"]
  if not be then return end
  local targets = {}
  for name, srv in pairs(be.servers) do
    local st = srv:get_stats()
    if name:sub(1, 1) == p.canary and st.status and st.status:sub(1, 2) == "UP" then
      targets[#targets + 1] = srv:get_addr()
    end
  end
  if #targets == 0 then return end
  local host, port = targets[math.random(#targets)]:match("^%[?(.-)%]?:(%d+)$")
  local req = p.req
  core.register_task(function()
    local sock = core.tcp()
    sock:settimeout(2)
    if sock:connect(host, tonumber(port)) then
      sock:send(req)
      sock:receive("*a")
    end
    sock:close()
  end)
end)
"""
CONFIG_FORMAT = 2  # bumped when the generated config changes shape; an adopted older one is redone
LATENCY_TABLE = "shipyard_latency"
MAX_WEIGHT = 256  # HAProxy's per-server weight range is 0..256; weights are ratios
PARKED = ("127.0.0.1", 1)  # where an unused slot points (it is in maintenance, never used)
_SOCK_MAX = 100  # sun_path is 108 bytes
_REFUSALS = (
    *("unknown", "not found", "no such", "error", "invalid", "denied"),
    *("can't", "cannot", "failed", "missing", "require", "not allowed"),
)


def split_weights(canary_percent: float, stable_n: int, canary_n: int) -> tuple[int, int]:
    """Per-server integer weights (stable, canary) whose totals come closest to the percentage.

    The bigger per-server weight is scaled to 256 and the other rounded, so the resolution is about
    0.4 points at the ends and finer in the middle. Any share above 0 gets at least weight 1 (never
    silently 0 %), any share below 100 leaves the stable at least 1.
    """
    p = canary_percent / 100.0
    if canary_n == 0:
        return MAX_WEIGHT, 0
    if stable_n == 0:
        return 0, MAX_WEIGHT
    per_canary = p / canary_n
    per_stable = (1.0 - p) / stable_n
    scale = MAX_WEIGHT / max(per_canary, per_stable)
    stable_w = round(per_stable * scale)
    canary_w = round(per_canary * scale)
    if p > 0 and canary_w == 0:
        canary_w = 1
    if p < 1 and stable_w == 0:
        stable_w = 1
    return stable_w, canary_w


@dataclass(frozen=True, slots=True)
class Slot:
    """One server as it should be (or is): address, weight, in service or parked."""

    host: str
    port: int
    weight: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class Totals:
    """A slot group's cumulative counts in this HAProxy process (baselines are these, too)."""

    requests: int = 0
    errors_5xx: int = 0
    buckets: tuple[int, ...] = ()  # requests per latency bucket (not cumulative); () = unknown

    def encode(self) -> str:
        return f"{self.requests}:{self.errors_5xx}:{','.join(map(str, self.buckets))}"

    @classmethod
    def decode(cls, text: str) -> Totals:
        """ "req:err[:b0,b1,...]"; format 1 had no buckets."""
        req, _, rest = text.partition(":")
        err, _, hist = rest.partition(":")
        buckets = tuple(int(n) for n in hist.split(",") if n) if hist else ()
        return cls(int(req or 0), int(err or 0), buckets)

    def below(self, base: Totals) -> bool:
        """Did any counter go down since ``base`` (a new HAProxy process)?"""
        if self.requests < base.requests or self.errors_5xx < base.errors_5xx:
            return True
        return any(n < b for n, b in zip(self.buckets, base.buckets, strict=False))


@dataclass(slots=True)
class Layout:
    """What the proxy holds: per group, the candidate and its slots; the plan's own numbers."""

    candidates: dict[str, str] = field(default_factory=dict)  # group -> candidate
    stable: str | None = None  # group
    canary: str | None = None  # group
    weight: float = 0.0
    mirror: float = 0.0
    segment: SegmentMatch | None = None
    base: dict[str, Totals] = field(default_factory=dict)  # group -> its totals when assigned
    slots: dict[str, Slot] = field(default_factory=dict)  # "a1" -> Slot


# -- HAProxy text formats ------------------------------------------------------------------------
def _hexescape(text: str) -> str:
    """A PCRE literal with no spaces, '#', ';' or backslash pairs the CLI would eat."""
    out = []
    for ch in text:
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif ord(ch) < 256:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\x{{{ord(ch):x}}}")
    return "".join(out)


_SP = r"[\t\x20]*"


SEGMENT_MAPS = ("hdr", "hval", "hre", "path")


def _regex_key(regex: str) -> str:
    """The user's regex as a map key: spaces, '#' and ';' (bare or escaped) become ``\\xHH``.

    validate.py has already refused verbose mode and non-ASCII, where this would change meaning.
    """
    out: list[str] = []
    i = 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            out.append(f"\\x{ord(nxt):02x}" if nxt in " #;" else ch + nxt)
            i += 2
            continue
        out.append(f"\\x{ord(ch):02x}" if ch in " #;" else ch)
        i += 1
    return "".join(out)


def segment_maps(segment: SegmentMatch | None) -> dict[str, dict[str, str]]:
    """The entries of hdr.map, hval.map, hre.map and path.map that match the segment.

    - ``hdr``: regexes over the header block (``req.hdrs``) for a header's or a cookie's
      presence or exact value
    - ``hval`` + ``hre``: for a header regex, ``hval`` extracts the header's (first) value with
      ``map_regm``, and ``hre`` runs the segment's regex over it, unanchored
    - ``path``: path prefixes (``map_beg``)
    """
    maps: dict[str, dict[str, str]] = {name: {} for name in SEGMENT_MAPS}
    if segment is None:
        return maps
    if segment.kind == "path":
        maps["path"][segment.value or "/"] = "1"
        return maps
    if segment.kind == "header":
        head = f"(?m)^(?i:{_hexescape(segment.name)}):"
        if segment.regex is not None:
            maps["hval"][f"{head}{_SP}([^\\r\\n]*?){_SP}\\r?$"] = "\\1"
            maps["hre"][_regex_key(segment.regex)] = "1"
        elif segment.value is None:
            maps["hdr"][head] = "1"
        else:
            maps["hdr"][f"{head}{_SP}{_hexescape(segment.value)}{_SP}\\r?$"] = "1"
        return maps
    # cookie: one "Cookie:" line, the pair at its start or after a ';'
    head = f"(?m)^(?i:cookie):(.*\\x3b)?{_SP}{_hexescape(segment.name)}="
    if segment.value is None:
        maps["hdr"][head] = "1"
    else:
        maps["hdr"][f"{head}{_hexescape(segment.value)}{_SP}(\\x3b|\\r?$)"] = "1"
    return maps


def _encode_segment(segment: SegmentMatch) -> str:
    data: dict[str, object] = {"kind": segment.kind, "name": segment.name, "value": segment.value}
    if segment.negate:
        data["negate"] = True
    if segment.regex is not None:
        data["regex"] = segment.regex
    return quote(json.dumps(data, separators=(",", ":"), sort_keys=True), safe="")


def _decode_segment(text: str) -> SegmentMatch:
    data = json.loads(unquote(text))
    return SegmentMatch(
        kind=str(data["kind"]),
        name=str(data.get("name", "")),
        value=None if data.get("value") is None else str(data["value"]),
        negate=bool(data.get("negate", False)),
        regex=None if data.get("regex") is None else str(data["regex"]),
    )


def meta_entries(layout: Layout) -> dict[str, str]:
    meta: dict[str, str] = {"weight": repr(float(layout.weight))}
    for group, candidate in sorted(layout.candidates.items()):
        meta[group] = quote(candidate, safe="")
        meta[f"base_{group}"] = layout.base.get(group, Totals()).encode()
    if layout.stable:
        meta["stable"] = layout.stable
    if layout.canary:
        meta["canary"] = layout.canary
    if layout.mirror > 0 and layout.stable and layout.canary:
        meta["mirror"] = f"{layout.canary}:{layout.stable}:{layout.mirror!r}"
    if layout.segment is not None and layout.canary:
        meta["segment"] = f"be_{layout.canary}"
        meta["match"] = _encode_segment(layout.segment)
        if layout.segment.negate:
            meta["negate"] = "1"
    return meta


def layout_from_meta(meta: Mapping[str, str]) -> Layout:
    layout = Layout()
    for group in GROUPS:
        if group in meta:
            layout.candidates[group] = unquote(meta[group])
            with contextlib.suppress(ValueError):
                layout.base[group] = Totals.decode(meta.get(f"base_{group}", ""))
    layout.stable = meta.get("stable") or None
    layout.canary = meta.get("canary") or None
    with contextlib.suppress(ValueError):
        layout.weight = float(meta.get("weight", "0"))
        mirror = meta.get("mirror", "").rsplit(":", 1)[-1]
        layout.mirror = float(mirror) if mirror else 0.0
    if "segment" in meta and "match" in meta:
        layout.segment = _decode_segment(meta["match"])
    return layout


def _map_text(entries: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{key} {value}\n" for key, value in entries)


# -- the router ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Paths:
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


class HaproxyRouter:
    """Drives one HAProxy per environment (``route.state_dir``); see the module docstring.

    ``HaproxyRouter(haproxy="haproxy", slots=8, ready_timeout=5.0)``: ``slots`` instances per
    version at most; ``apply`` waits up to ``ready_timeout`` seconds for newly enabled servers to
    pass their health check.
    """

    kind: ClassVar[str] = "haproxy"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.WEIGHTS, Capability.SEGMENTS, Capability.MIRROR}
    )

    def __init__(
        self, haproxy: str = "haproxy", *, slots: int = 8, ready_timeout: float = 5.0
    ) -> None:
        if not 1 <= slots <= 64:
            raise InvalidError(f"slots must be within 1..64, got {slots}")
        self.haproxy = haproxy
        self.slots = slots
        self.ready_timeout = ready_timeout
        self._procs: dict[Path, subprocess.Popen[bytes]] = {}
        self._locks: dict[Path, threading.RLock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, route: RouteRef) -> threading.RLock:
        """One change at a time per environment (within this process)."""
        with self._locks_guard:
            return self._locks.setdefault(route.state_dir.resolve(), threading.RLock())

    # -- files and sockets --------------------------------------------------------------------
    def _paths(self, route: RouteRef) -> _Paths:
        d = route.state_dir.resolve()
        sock_dir = d
        if len(str(d / "master.sock")) > _SOCK_MAX:  # sun_path limit: use a short private dir
            digest = sha1(str(d).encode(), usedforsecurity=False).hexdigest()[:16]
            sock_dir = Path(tempfile.gettempdir()) / f"shipyard-haproxy-{digest}"
            sock_dir.mkdir(mode=0o700, exist_ok=True)
        return _Paths(
            cfg=d / "haproxy.cfg",
            lua=d / "mirror.lua",
            meta=d / "meta.map",
            hdr=d / "hdr.map",
            hval=d / "hval.map",
            hre=d / "hre.map",
            path=d / "path.map",
            pid=d / "haproxy.pid",
            log=d / "haproxy.log",
            admin=sock_dir / "admin.sock",
            master=sock_dir / "master.sock",
        )

    @staticmethod
    def _cli(sock_path: Path, command: str, *, timeout: float = 5.0, master: bool = False) -> str:
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

    @staticmethod
    def _map_path(paths: _Paths, name: str) -> Path:
        path: Path = getattr(paths, name)
        return path

    def _admin(self, paths: _Paths, command: str) -> str:
        out = self._cli(paths.admin, command)
        first_line = out.strip().split("\n", 1)[0].lower()
        if command.startswith("show ") and not first_line.startswith(("unknown", "can't")):
            return out
        low = first_line
        if any(word in low for word in _REFUSALS):
            first = out.strip().splitlines()[0] if out.strip() else ""
            raise AdapterError(f"haproxy refused {command!r}: {first}")
        return out

    def _render(self, route: RouteRef, paths: _Paths, layout: Layout) -> str:
        lines = [
            f"# Generated by Shipyard (router kind haproxy, format {CONFIG_FORMAT}); "
            "rewritten on every apply.",
            "global",
            f"    lua-load {paths.lua}",
            f"    stats socket {paths.admin} mode 600 level admin",
            "    stats timeout 10s",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    timeout queue 5s",
            "    timeout http-keep-alive 10s",
            "    retries 1",
            "    option redispatch",
            "    default-server inter 500ms fastinter 100ms downinter 500ms rise 1 fall 2",
            "frontend fe",
            f"    bind 127.0.0.1:{route.listen_port}",
            "    option http-buffer-request",
            "    http-request set-var(txn.shipyard_t0) date(0,us)",
            f"    http-request set-var(txn.shipyard_mirror) str(mirror),map({paths.meta})"
            f" if {{ str(mirror),map({paths.meta}) -m found }}",
            "    http-request lua.shipyard_mirror_req if { var(txn.shipyard_mirror) -m found }",
            "    http-response lua.shipyard_mirror_res if { var(txn.shipyard_mirror) -m found }",
            f"    acl seg_on str(segment),map({paths.meta}) -m found",
            f"    acl seg_neg str(negate),map({paths.meta}) -m found",
            f"    acl seg_hit req.hdrs,map_reg({paths.hdr}) -m found",
            f"    acl seg_hit req.hdrs,map_regm({paths.hval}),map_reg({paths.hre}) -m found",
            f"    acl seg_hit path,map_beg({paths.path}) -m found",
            f"    use_backend %[str(segment),map({paths.meta})] if seg_on !seg_neg seg_hit",
            f"    use_backend %[str(segment),map({paths.meta})] if seg_on seg_neg !seg_hit",
            "    default_backend be",
            *self._latency_rules(),
            f"backend {LATENCY_TABLE}",
            f"    stick-table type string len 8 size 8 store gpc({len(LATENCY_BOUNDS)})",
            "backend be",
            "    balance roundrobin",
        ]
        for name in self._slot_names():
            slot = layout.slots.get(name, Slot(*PARKED, 0, False))
            state = "" if slot.enabled else " disabled"
            lines.append(
                f"    server {name} {_addr(slot.host, slot.port)} weight {slot.weight} check{state}"
            )
        for group in GROUPS:
            lines += [f"backend be_{group}", "    balance roundrobin"]
            for name in self._slot_names(group):
                slot = layout.slots.get(name, Slot(*PARKED, 0, False))
                lines.append(f"    server {name} {_addr(slot.host, slot.port)} track be/{name}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _latency_rules() -> list[str]:
        """Count each answered request into exactly one bucket of its slot group's table entry.

        The time is from the end of the request rules (headers and body in) to the server's
        response headers: queue + connect + the server's own time, in microseconds.
        """
        us = "var(txn.shipyard_us) -m int"
        lines = [
            "    http-response set-var(txn.shipyard_us) date(0,us),sub(txn.shipyard_t0)",
            f"    http-response track-sc0 srv_name,bytes(0,1) table {LATENCY_TABLE}",
        ]
        low: int | None = None
        for index, bound in enumerate(LATENCY_BOUNDS):
            cond = [] if low is None else [f"{{ {us} gt {low} }}"]
            if bound != float("inf"):
                high = round(bound * 1_000_000)
                cond.append(f"{{ {us} le {high} }}")
                low = high
            lines.append(f"    http-response sc-inc-gpc({index},0) if {' '.join(cond)}")
        return lines

    def _slot_names(self, group: str | None = None) -> list[str]:
        groups = GROUPS if group is None else (group,)
        return [f"{g}{i}" for g in groups for i in range(1, self.slots + 1)]

    def _write_files(
        self, route: RouteRef, paths: _Paths, layout: Layout, *, check: bool = False
    ) -> None:
        """Persist the layout into the config and the map files, each replaced atomically.

        ``check`` runs ``haproxy -c`` on the new config first (before a start; apply skips it:
        the config only differs in addresses and weights it has already validated).
        """
        maps = segment_maps(layout.segment if layout.canary else None)
        _atomic_write(paths.lua, MIRROR_LUA)
        _atomic_write(paths.meta, _map_text(meta_entries(layout).items()))
        for name, entries in maps.items():
            _atomic_write(self._map_path(paths, name), _map_text(entries.items()))
        cfg_text = self._render(route, paths, layout)
        tmp = paths.cfg.with_name(".haproxy.cfg.new")
        tmp.write_text(cfg_text)
        if not check:
            os.replace(tmp, paths.cfg)
            return
        try:
            self._check_config(tmp)
        except AdapterError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, paths.cfg)

    def _check_config(self, cfg: Path) -> None:
        try:
            result = subprocess.run(
                [self.haproxy, "-c", "-q", "-f", str(cfg)],
                env=child_env({}),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError as exc:
            raise AdapterError(f"cannot run {self.haproxy}: {exc}") from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise AdapterError(f"haproxy -c rejected the config: {detail[0] if detail else '?'}")

    # -- process ---------------------------------------------------------------------------------
    def _running_pid(self, paths: _Paths) -> int | None:
        try:
            pid = int(paths.pid.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _alive(pid):
            return None
        try:
            self._cli(paths.admin, "show info", timeout=2)
        except AdapterError:
            return None
        return pid

    def ensure(self, route: RouteRef) -> None:
        with self._lock(route):
            self._ensure(route)

    def _ensure(self, route: RouteRef) -> None:
        route.state_dir.mkdir(parents=True, exist_ok=True)
        paths = self._paths(route)
        if self._running_pid(paths) is not None:
            cfg = paths.cfg.read_text()
            current = f"format {CONFIG_FORMAT})" in cfg.split("\n", 1)[0]
            if not current or f"bind 127.0.0.1:{route.listen_port}\n" not in cfg:
                # adopted, but the environment's port changed or an older Shipyard wrote the
                # config: rewrite it from what is live, and reload
                self._write_files(route, paths, self._live_layout(paths), check=True)
                self.reload(route)
            return
        stale = self._procs.pop(route.state_dir.resolve(), None)
        if stale is not None:  # our child died: reap it before starting another
            self._terminate(stale)
        layout = Layout()
        if paths.meta.exists() and paths.cfg.exists():  # restarting: keep the last applied plan
            layout = self._layout_from_files(paths)
            layout.base = {}  # a new process counts from zero
        self._write_files(route, paths, layout, check=True)
        argv = [self.haproxy, "-W", "-S", str(paths.master), "-f", str(paths.cfg)]
        argv += ["-p", str(paths.pid)]
        log = paths.log.open("ab")
        try:
            proc = subprocess.Popen(
                argv,
                env=child_env({}),  # the proxy needs none of the server's configuration
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise AdapterError(f"cannot start {self.haproxy}: {exc}") from exc
        finally:
            log.close()
        self._procs[route.state_dir.resolve()] = proc
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AdapterError(
                    f"haproxy for {route.project}/{route.environment} exited with "
                    f"{proc.returncode}: {_tail(paths.log)}"
                )
            if self._running_pid(paths) is not None and _port_open(route.listen_port):
                return
            time.sleep(0.01)
        self._terminate(proc)
        raise AdapterError(
            f"haproxy for {route.project}/{route.environment} did not answer within 10s"
        )

    def _layout_from_files(self, paths: _Paths) -> Layout:
        meta: dict[str, str] = {}
        for line in paths.meta.read_text().splitlines():
            key, _, value = line.strip().partition(" ")
            if key and not key.startswith("#"):
                meta[key] = value.strip()
        layout = layout_from_meta(meta)
        for line in paths.cfg.read_text().splitlines():
            words = line.split()
            if len(words) >= 5 and words[0] == "server" and words[3] == "weight":
                host, port = _split_addr(words[2])
                layout.slots[words[1]] = Slot(host, port, int(words[4]), "disabled" not in words)
        return layout

    def reload(self, route: RouteRef) -> None:
        """Hitless reload through the master CLI (rewrites nothing; the files hold the state)."""
        paths = self._paths(route)
        self._check_config(paths.cfg)
        before = self._worker_pid(paths)
        self._cli(paths.master, "reload", master=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(AdapterError):
                if self._worker_pid(paths) not in (None, before):
                    self._reset_baselines(paths)
                    return
            time.sleep(0.01)
        raise AdapterError(f"haproxy for {route.project}/{route.environment} did not reload")

    def _reset_baselines(self, paths: _Paths) -> None:
        """A new worker counts from zero, so the candidates' baselines are zero too."""
        layout = layout_from_meta(self._show_map(paths, paths.meta))
        if any(layout.base.values()):
            layout.base = {}
            self._replace_map(paths, paths.meta, meta_entries(layout))
            _atomic_write(paths.meta, _map_text(meta_entries(layout).items()))

    def _worker_pid(self, paths: _Paths) -> int | None:
        for line in self._cli(paths.admin, "show info", timeout=2).splitlines():
            if line.startswith("Pid:"):
                return int(line.split(":", 1)[1])
        return None

    def stop(self, route: RouteRef) -> None:
        paths = self._paths(route)
        proc = self._procs.pop(route.state_dir.resolve(), None)
        if proc is not None:
            self._terminate(proc)
        else:
            pid = self._running_pid(paths)
            if pid is not None:
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
        paths.pid.unlink(missing_ok=True)
        for sock in (paths.admin, paths.master):
            sock.unlink(missing_ok=True)
        if paths.admin.parent != paths.cfg.parent:  # the short socket dir for a deep state dir
            with contextlib.suppress(OSError):
                paths.admin.parent.rmdir()

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    # -- runtime state ---------------------------------------------------------------------------
    def _show_map(self, paths: _Paths, map_path: Path) -> dict[str, str]:
        out = self._admin(paths, f"show map {map_path}")
        entries: dict[str, str] = {}
        for line in out.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3:
                entries[parts[1]] = parts[2]
        return entries

    def _servers(self, paths: _Paths) -> dict[str, Slot]:
        out = self._admin(paths, "show servers state be")
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
                enabled=(admin & 0x01)
                == 0,  # no forced maintenance (CMAINT 0x04 only marks "disabled" in the config)
            )
        return slots

    def _stats(self, paths: _Paths) -> list[dict[str, str]]:
        out = self._admin(paths, "show stat")
        text = out.lstrip("# ")
        return [row for row in csv.DictReader(io.StringIO(text)) if row.get("pxname")]

    def _live_layout(self, paths: _Paths) -> Layout:
        layout = layout_from_meta(self._show_map(paths, paths.meta))
        layout.slots = self._servers(paths)
        return layout

    # -- the port --------------------------------------------------------------------------------
    def apply(self, route: RouteRef, plan: RoutePlan) -> None:
        check_plan(plan, max_addresses=self.slots, mirror=True)
        with self._lock(route):
            self._apply(route, plan)

    def _apply(self, route: RouteRef, plan: RoutePlan) -> None:
        self._ensure(route)
        paths = self._paths(route)
        live = self._live_layout(paths)
        target = self._target_layout(live, plan)
        if target.candidates != live.candidates:  # a group changes hands: restart its counters
            totals = self._group_totals(paths)
            for group, candidate in target.candidates.items():
                if live.candidates.get(group) != candidate:
                    target.base[group] = totals.get(group, Totals())
        self._probe([target.slots[n] for n in target.slots if live.slots.get(n) != target.slots[n]])
        prepared = self._prepare_segment(paths, live, target)
        self._apply_servers(paths, live, target)
        self._apply_maps(paths, target, prepared)
        self._write_files(route, paths, target)

    def _target_layout(self, live: Layout, plan: RoutePlan) -> Layout:
        wanted = {"stable": plan.stable, "canary": plan.canary}
        target = Layout(
            weight=float(plan.canary_weight),
            mirror=float(plan.mirror_percent),
            segment=plan.segment,
        )
        taken: dict[str, str] = {}
        for role, backend in wanted.items():  # a candidate keeps its group
            if backend is None:
                continue
            for group, candidate in live.candidates.items():
                if candidate == backend.candidate and group not in taken:
                    taken[group] = role
        for role, backend in wanted.items():
            if backend is not None and role not in taken.values():
                free = next(g for g in GROUPS if g not in taken)
                taken[free] = role
        for group, role in taken.items():
            backend = wanted[role]
            assert backend is not None
            target.candidates[group] = backend.candidate
            target.base[group] = live.base.get(group, Totals())
            setattr(target, role, group)
        n_stable = len(plan.stable.addresses) if plan.stable else 0
        n_canary = len(plan.canary.addresses) if plan.canary else 0
        stable_w, canary_w = split_weights(plan.canary_weight, n_stable, n_canary)
        for group, role in taken.items():
            backend = wanted[role]
            assert backend is not None
            weight = stable_w if role == "stable" else canary_w
            for i, address in enumerate(backend.addresses, start=1):
                host, port = parse_address(address)
                target.slots[f"{group}{i}"] = Slot(host, port, weight, True)
        return target

    def _apply_servers(self, paths: _Paths, live: Layout, target: Layout) -> None:
        """Change servers in an order that never leaves the backend without a weighted server."""

        def moved(name: str) -> bool:
            have, want = live.slots.get(name), target.slots[name]
            return have is None or (have.host, have.port) != (want.host, want.port)

        wanted = [n for n in self._slot_names() if n in target.slots]
        busy = [n for n in wanted if moved(n) and self._enabled(live, n)]  # serving elsewhere
        idle = [n for n in wanted if n not in busy and (moved(n) or not self._enabled(live, n))]
        self._bring_up(paths, target, idle)  # 1. slots that carry no traffic yet
        if busy:  # 2. others carry the traffic while a serving slot changes address
            steady = [n for n in self._slot_names() if n not in busy and self._enabled(live, n)]
            for name in steady:
                weight = target.slots[name].weight if name in target.slots else 0
                if sum(target.slots[n].weight for n in steady if n in target.slots) == 0:
                    weight = max(weight, 1)
                self._admin(paths, f"set server be/{name} weight {weight}")
            for name in busy:
                self._admin(paths, f"set server be/{name} state drain")
            for name in busy:
                self._admin(paths, f"set server be/{name} state maint")
            self._bring_up(paths, target, busy)
        for name in wanted:  # 3. the final weights
            self._admin(paths, f"set server be/{name} weight {target.slots[name].weight}")
        for name in self._slot_names():  # 4. park what the plan no longer uses
            if name not in target.slots and self._enabled(live, name):
                self._admin(paths, f"set server be/{name} weight 0")
                self._admin(paths, f"set server be/{name} state maint")

    @staticmethod
    def _enabled(layout: Layout, name: str) -> bool:
        slot = layout.slots.get(name)
        return slot is not None and slot.enabled

    def _bring_up(self, paths: _Paths, target: Layout, names: list[str]) -> None:
        for name in names:
            want = target.slots[name]
            addr = f"addr {want.host} port {want.port}"
            self._admin(paths, f"set server be/{name} {addr}")
            self._admin(paths, f"set server be_{name[0]}/{name} {addr}")
            self._admin(paths, f"set server be/{name} weight {want.weight}")
            self._admin(paths, f"set server be/{name} state ready")
        self._wait_up(paths, names)

    def _probe(self, slots: list[Slot]) -> None:
        """Refuse the plan before changing anything when a new address accepts no connection."""
        deadline = time.monotonic() + self.ready_timeout
        for slot in slots:
            if not slot.enabled:
                continue
            while not _port_open(slot.port, slot.host):
                if time.monotonic() > deadline:
                    raise AdapterError(
                        f"backend {_addr(slot.host, slot.port)} did not accept a connection "
                        f"within {self.ready_timeout:g}s; nothing was changed"
                    )
                time.sleep(0.05)

    def _wait_up(self, paths: _Paths, names: list[str]) -> None:
        if not names:
            return
        deadline = time.monotonic() + self.ready_timeout
        down: list[str] = names
        while True:
            status = {
                row["svname"]: row.get("status", "")
                for row in self._stats(paths)
                if row["pxname"] == "be"
            }
            down = [n for n in names if not status.get(n, "").startswith("UP")]
            if not down or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if down:
            raise AdapterError(
                f"haproxy servers {', '.join(down)} did not pass their health check "
                f"within {self.ready_timeout:g}s"
            )

    def _prepare_segment(self, paths: _Paths, live: Layout, target: Layout) -> dict[Path, str]:
        """Load the new segment maps as uncommitted versions: HAProxy refuses a regex here,
        before anything changed. Returns {map: version}; empty when the segment is unchanged."""
        if live.segment == target.segment and live.canary == target.canary:
            return {}
        maps = segment_maps(target.segment if target.canary else None)
        return {
            self._map_path(paths, name): self._prepare_map(paths, self._map_path(paths, name), e)
            for name, e in maps.items()
        }

    def _apply_maps(self, paths: _Paths, target: Layout, prepared: Mapping[Path, str]) -> None:
        meta = meta_entries(target)
        if prepared:
            # switch the segment off first, so a half-updated match never routes anybody
            off = {k: v for k, v in meta.items() if k not in ("segment", "negate", "match")}
            self._replace_map(paths, paths.meta, off)
            for map_path, version in prepared.items():
                self._admin(paths, f"commit map @{version} {map_path}")
        self._replace_map(paths, paths.meta, meta)

    def _prepare_map(self, paths: _Paths, map_path: Path, entries: Mapping[str, str]) -> str:
        """A new, uncommitted version of the map holding ``entries``; returns its number."""
        out = self._admin(paths, f"prepare map {map_path}")
        version = out.strip().rsplit(":", 1)[-1].strip()
        if not version.isdigit():
            raise AdapterError(f"haproxy prepare map answered {out.strip()!r}")
        for key, value in entries.items():
            # the CLI eats one level of backslashes
            cli = f"{key} {value}".replace("\\", "\\\\")
            self._admin(paths, f"add map @{version} {map_path} {cli}")
        return version

    def _replace_map(self, paths: _Paths, map_path: Path, entries: Mapping[str, str]) -> None:
        """Swap a map's whole content atomically: prepare, fill, commit (HAProxy >= 2.4)."""
        version = self._prepare_map(paths, map_path, entries)
        self._admin(paths, f"commit map @{version} {map_path}")

    def observe(self, route: RouteRef) -> RoutePlan:
        paths = self._paths(route)
        if self._running_pid(paths) is None:
            raise AdapterError(f"haproxy for {route.project}/{route.environment} is not running")
        live = self._live_layout(paths)

        def backend(group: str | None) -> Backend | None:
            if group is None or group not in live.candidates:
                return None
            addresses = tuple(
                _addr(slot.host, slot.port)
                for name in self._slot_names(group)
                if (slot := live.slots.get(name)) is not None and slot.enabled
            )
            return Backend(live.candidates[group], addresses)

        stable, canary = backend(live.stable), backend(live.canary)
        weight = live.weight
        if stable is not None and canary is not None:
            expected = split_weights(weight, len(stable.addresses), len(canary.addresses))
            totals = [0, 0]
            matches = True
            for index, group in enumerate((live.stable, live.canary)):
                for name in self._slot_names(group):
                    slot = live.slots.get(name)
                    if slot is not None and slot.enabled:
                        totals[index] += slot.weight
                        matches = matches and slot.weight == expected[index]
            if not matches:  # someone moved weights by hand: report what HAProxy really does
                both = sum(totals)
                weight = 100.0 * totals[1] / both if both else 0.0
        segment = live.segment if canary is not None else None
        mirror = live.mirror if stable is not None and canary is not None else 0.0
        return RoutePlan(stable, canary, weight, segment, mirror)

    def _latency_table(self, paths: _Paths) -> dict[str, tuple[int, ...]] | None:
        """Requests per latency bucket per slot group; None when the proxy keeps no table."""
        out = self._admin(paths, f"show table {LATENCY_TABLE}")
        if not out.startswith("# table:"):
            return None  # a proxy started from an older config
        table: dict[str, tuple[int, ...]] = {}
        for line in out.splitlines()[1:]:
            fields = dict(word.partition("=")[::2] for word in line.split()[1:] if "=" in word)
            counts = [_int(fields.get(f"gpc{i}")) for i in range(len(LATENCY_BOUNDS))]
            if fields.get("key"):
                table[fields["key"]] = tuple(counts)
        return table

    def _group_totals(self, paths: _Paths) -> dict[str, Totals]:
        """Per slot group: requests and 5xx (servers of be and be_x), and the latency buckets.

        The table is read first: a request is in ``req_tot`` from when it is sent, and in a bucket
        only once it is answered, so no bucket is ever ahead of the requests.
        """
        table = self._latency_table(paths)
        return _totals(self._stats(paths), table)

    def counters(self, route: RouteRef) -> dict[str, Counters]:
        paths = self._paths(route)
        live = layout_from_meta(self._show_map(paths, paths.meta))
        table = self._latency_table(paths)  # first: see _group_totals
        rows = self._stats(paths)
        totals = _totals(rows, table)
        sums: dict[str, dict[str, float]] = {}
        for row in rows:
            name = row.get("svname", "")
            if row["pxname"] not in ("be", "be_a", "be_b") or name[:1] not in live.candidates:
                continue
            acc = sums.setdefault(name[0], {})
            req = _int(row.get("req_tot"))
            for key in ("req_tot", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "scur"):
                acc[key] = acc.get(key, 0.0) + _int(row.get(key))
            acc["rtime_weighted"] = acc.get("rtime_weighted", 0.0) + req * _int(row.get("rtime"))
        result: dict[str, Counters] = {}
        for group, candidate in live.candidates.items():
            acc = sums.get(group, {})
            total = totals.get(group, Totals())
            base = live.base.get(group, Totals())
            if total.below(base):  # counters restarted with a new worker: no baseline left
                base = Totals()
            buckets: dict[float, float] = {}
            if total.buckets:
                zero = (0,) * len(total.buckets)
                start = base.buckets if len(base.buckets) == len(total.buckets) else zero
                buckets = cumulative_buckets(
                    [n - b for n, b in zip(total.buckets, start, strict=True)]
                )
            req_all = acc.get("req_tot", 0.0)
            rtime = acc.get("rtime_weighted", 0.0) / req_all if req_all else 0.0
            result[candidate] = Counters(
                requests=max(0, total.requests - base.requests),
                errors_5xx=max(0, total.errors_5xx - base.errors_5xx),
                response_time_ms_avg=rtime,
                extra={k: acc.get(k, 0.0) for k in ("hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "scur")},
                latency_buckets=buckets,
            )
        return result


# -- small helpers -------------------------------------------------------------------------------
def _totals(
    rows: Iterable[Mapping[str, str]], table: Mapping[str, tuple[int, ...]] | None
) -> dict[str, Totals]:
    sums: dict[str, list[int]] = {}
    for row in rows:
        name = row.get("svname", "")
        if row["pxname"] not in ("be", "be_a", "be_b") or name[:1] not in GROUPS:
            continue
        acc = sums.setdefault(name[0], [0, 0])
        acc[0] += _int(row.get("req_tot"))
        acc[1] += _int(row.get("hrsp_5xx"))
    empty = (0,) * len(LATENCY_BOUNDS)
    return {
        group: Totals(req, err, () if table is None else table.get(group, empty))
        for group, (req, err) in sums.items()
    }


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_text(text)
    os.replace(tmp, path)


__all__ = ["HaproxyRouter", "split_weights"]
