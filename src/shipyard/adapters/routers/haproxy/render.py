"""The config renderer: a layout to haproxy.cfg text and map files, and nothing else (pure).

``haproxy.cfg`` carries the live addresses, weights and enabled slots, so a reload or a restart
comes back with the last applied plan; ``meta.map`` the plan's own numbers (see layout.py); the
segment maps (``hdr``, ``hval``, ``hre``, ``path``) the match of a segment route; ``mirror.lua``
the mirror actions. The frontend routes by map lookups, so a change of segment or mirror is a
map change over the Runtime API, never a reload.

Latencies: the frontend notes the time when a request's headers (and body) are in and when the
server's response headers arrive, and counts the difference into one of ``LATENCY_BOUNDS``'
buckets: a stick table ``shipyard_latency`` keyed by slot group, one ``gpc`` per bucket. The
counters live in HAProxy (they survive a restart of Shipyard, not a reload of HAProxy), cost no
Lua and no log parsing, and ``show table`` reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from shipyard.adapters.routers.haproxy.layout import (
    GROUPS,
    PARKED,
    Layout,
    Slot,
    addr,
    layout_from_meta,
    meta_entries,
    slot_names,
    split_addr,
)
from shipyard.adapters.routers.haproxy.paths import SEGMENT_MAPS, Paths
from shipyard.adapters.routers.validate import LATENCY_BOUNDS
from shipyard.ports.routers import SegmentMatch

CONFIG_FORMAT = 2  # bumped when the generated config changes shape; an adopted older one is redone
LATENCY_TABLE = "shipyard_latency"
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


def map_text(entries: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{key} {value}\n" for key, value in entries)


def is_current(cfg_text: str, listen_port: int) -> bool:
    """Whether a config found on disk is this format and binds this port (else it is redone)."""
    first = cfg_text.split("\n", 1)[0]
    return f"format {CONFIG_FORMAT})" in first and f"bind 127.0.0.1:{listen_port}\n" in cfg_text


def render_config(paths: Paths, listen_port: int, layout: Layout, slots: int) -> str:
    """haproxy.cfg for ``layout`` with ``slots`` servers per group."""
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
        f"    bind 127.0.0.1:{listen_port}",
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
        *_latency_rules(),
        f"backend {LATENCY_TABLE}",
        f"    stick-table type string len 8 size 8 store gpc({len(LATENCY_BOUNDS)})",
        "backend be",
        "    balance roundrobin",
    ]
    for name in slot_names(slots):
        slot = layout.slots.get(name, Slot(*PARKED, 0, False))
        state = "" if slot.enabled else " disabled"
        lines.append(
            f"    server {name} {addr(slot.host, slot.port)} weight {slot.weight} check{state}"
        )
    for group in GROUPS:
        lines += [f"backend be_{group}", "    balance roundrobin"]
        for name in slot_names(slots, group):
            slot = layout.slots.get(name, Slot(*PARKED, 0, False))
            lines.append(f"    server {name} {addr(slot.host, slot.port)} track be/{name}")
    return "\n".join(lines) + "\n"


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


def render_files(paths: Paths, layout: Layout) -> dict[Path, str]:
    """Every file but the config: the Lua actions, meta.map and the segment maps."""
    files = {paths.lua: MIRROR_LUA, paths.meta: map_text(meta_entries(layout).items())}
    maps = segment_maps(layout.segment if layout.canary else None)
    for name in SEGMENT_MAPS:
        files[paths.segment_map(name)] = map_text(maps[name].items())
    return files


def parse_files(meta_text: str, cfg_text: str) -> Layout:
    """The layout a config and meta.map written by ``render_*`` hold (to restart with it)."""
    meta: dict[str, str] = {}
    for line in meta_text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            meta[key] = value.strip()
    layout = layout_from_meta(meta)
    for line in cfg_text.splitlines():
        words = line.split()
        if len(words) >= 5 and words[0] == "server" and words[3] == "weight":
            host, port = split_addr(words[2])
            layout.slots[words[1]] = Slot(host, port, int(words[4]), "disabled" not in words)
    return layout
