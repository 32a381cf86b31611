"""What one HAProxy holds, as data: slot groups, slots, weights and the meta.map encoding.

Pure: no sockets, no files. The router reads a ``Layout`` back from HAProxy (``show map``,
``show servers state``), builds the one a plan wants (``target_layout``) and moves from the first
to the second. Two slot groups, ``a`` and ``b``; a candidate keeps its group while it is in the
plan, so promoting the canary only relabels a group and moves weights.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from shipyard.adapters.routers.validate import parse_address
from shipyard.ports.routers import RoutePlan, SegmentMatch

GROUPS = ("a", "b")
MAX_WEIGHT = 256  # HAProxy's per-server weight range is 0..256; weights are ratios
PARKED = ("127.0.0.1", 1)  # where an unused slot points (it is in maintenance, never used)
SEGMENT_KEYS = ("segment", "negate", "match")  # the meta.map entries that route a segment


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

    def enabled(self, name: str) -> bool:
        slot = self.slots.get(name)
        return slot is not None and slot.enabled


def slot_names(slots: int, group: str | None = None) -> list[str]:
    """``a1..aN`` then ``b1..bN`` (or one group's)."""
    groups = GROUPS if group is None else (group,)
    return [f"{g}{i}" for g in groups for i in range(1, slots + 1)]


def target_layout(live: Layout, plan: RoutePlan) -> Layout:
    """The layout ``plan`` wants, keeping each candidate already live in its group."""
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
    n_stable = len(plan.stable.addresses) if plan.stable else 0
    n_canary = len(plan.canary.addresses) if plan.canary else 0
    stable_w, canary_w = split_weights(plan.canary_weight, n_stable, n_canary)
    for group, role in taken.items():
        backend = wanted[role]
        assert backend is not None
        target.candidates[group] = backend.candidate
        target.base[group] = live.base.get(group, Totals())
        setattr(target, role, group)
        weight = stable_w if role == "stable" else canary_w
        for i, address in enumerate(backend.addresses, start=1):
            host, port = parse_address(address)
            target.slots[f"{group}{i}"] = Slot(host, port, weight, True)
    return target


# -- meta.map: which candidate holds which group, the plan's exact numbers ------------------------
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


def addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)
