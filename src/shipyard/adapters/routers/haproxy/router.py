"""The HAProxy router adapter: composes the supervisor, the renderer and the Runtime API client.

``apply`` moves from the live layout (read back from HAProxy) to the one the plan wants, over the
Runtime API, never by reload, in an order where every request has somewhere to go: the new
routing is made live first (new slots up and healthy, weights, then the maps that send segments
and mirrors), and only then is the old retired (slots the plan no longer uses are parked). So an
abort of a segment canary switches the segment off before the canary's servers go.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from shipyard.adapters.routers.haproxy.layout import (
    SEGMENT_KEYS,
    Layout,
    Slot,
    Totals,
    addr,
    meta_entries,
    slot_names,
    split_weights,
    target_layout,
)
from shipyard.adapters.routers.haproxy.paths import Paths, paths_for
from shipyard.adapters.routers.haproxy.process import Supervisor, exclusive, port_open
from shipyard.adapters.routers.haproxy.render import (
    is_current,
    parse_files,
    render_config,
    render_files,
    segment_maps,
)
from shipyard.adapters.routers.haproxy.runtime import RuntimeApi, as_int
from shipyard.adapters.routers.haproxy.stats import group_totals
from shipyard.adapters.routers.validate import check_plan
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.routers import Backend, Capability, RoutePlan, RouteRef


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
        self.slots = slots
        self.ready_timeout = ready_timeout
        self.process = Supervisor(haproxy)
        self._locks: dict[Path, threading.RLock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, route: RouteRef) -> threading.RLock:
        """One change at a time per environment (within this process)."""
        with self._locks_guard:
            return self._locks.setdefault(route.state_dir.resolve(), threading.RLock())

    @staticmethod
    def paths(route: RouteRef) -> Paths:
        return paths_for(route.state_dir)

    def runtime(self, route: RouteRef) -> RuntimeApi:
        """The Runtime API of the route's HAProxy (for reading, and for operators' tests)."""
        return RuntimeApi(self.paths(route).admin)

    @staticmethod
    def _label(route: RouteRef) -> str:
        return f"{route.project}/{route.environment}"

    # -- files ---------------------------------------------------------------------------------
    def _write_files(
        self, route: RouteRef, paths: Paths, layout: Layout, *, check: bool = False
    ) -> None:
        """Persist the layout into the config and the map files, each replaced atomically.

        ``check`` runs ``haproxy -c`` on the new config first (before a start; apply skips it:
        the config only differs in addresses and weights it has already validated).
        """
        for path, text in render_files(paths, layout).items():
            _atomic_write(path, text)
        tmp = paths.cfg.with_name(".haproxy.cfg.new")
        tmp.write_text(render_config(paths, route.listen_port, layout, self.slots))
        if check:
            try:
                self.process.check_config(tmp)
            except AdapterError:
                tmp.unlink(missing_ok=True)
                raise
        os.replace(tmp, paths.cfg)

    # -- process -------------------------------------------------------------------------------
    def ensure(self, route: RouteRef) -> None:
        with self._lock(route):
            self._ensure(route)

    def _ensure(self, route: RouteRef) -> None:
        route.state_dir.mkdir(parents=True, exist_ok=True)
        paths = self.paths(route)
        if self.process.running_pid(paths) is None:
            with exclusive(route.state_dir):  # another server may be starting it right now
                self._start_or_adopt(route, paths)
        else:
            self._start_or_adopt(route, paths)

    def _start_or_adopt(self, route: RouteRef, paths: Paths) -> None:
        if self.process.running_pid(paths) is not None:
            if not is_current(paths.cfg.read_text(), route.listen_port):
                # adopted, but the environment's port changed or an older Shipyard wrote the
                # config: rewrite it from what is live, and reload
                live = RuntimeApi(paths.admin).layout(paths.meta)
                self._write_files(route, paths, live, check=True)
                self._reload(route, paths)
            return
        layout = Layout()
        if paths.meta.exists() and paths.cfg.exists():  # restarting: keep the last applied plan
            layout = parse_files(paths.meta.read_text(), paths.cfg.read_text())
            layout.base = {}  # a new process counts from zero
        self._write_files(route, paths, layout, check=True)
        self.process.start(paths, route.listen_port, self._label(route))

    def running(self, route: RouteRef) -> bool:
        """Whether the route's HAProxy is up and answers on its admin socket."""
        return self.process.running_pid(self.paths(route)) is not None

    def reload(self, route: RouteRef) -> None:
        """Hitless reload through the master CLI (rewrites nothing; the files hold the state)."""
        with self._lock(route):
            self._reload(route, self.paths(route))

    def _reload(self, route: RouteRef, paths: Paths) -> None:
        self.process.reload(paths, self._label(route))
        api = RuntimeApi(paths.admin)  # a new worker counts from zero, so do the baselines
        layout = api.layout(paths.meta)
        if any(layout.base.values()):
            layout.base = {}
            api.replace_map(paths.meta, meta_entries(layout))
            _atomic_write(paths.meta, render_files(paths, layout)[paths.meta])

    def stop(self, route: RouteRef) -> None:
        with self._lock(route):
            self.process.stop(self.paths(route))

    # -- the port ------------------------------------------------------------------------------
    def apply(self, route: RouteRef, plan: RoutePlan) -> None:
        check_plan(plan, max_addresses=self.slots, mirror=True)
        with self._lock(route):
            self._apply(route, plan)

    def _apply(self, route: RouteRef, plan: RoutePlan) -> None:
        self._ensure(route)
        paths = self.paths(route)
        api = RuntimeApi(paths.admin)
        live = api.layout(paths.meta)
        target = target_layout(live, plan)
        if target.candidates != live.candidates:  # a group changes hands: restart its counters
            totals = group_totals(api)
            for group, candidate in target.candidates.items():
                if live.candidates.get(group) != candidate:
                    target.base[group] = totals.get(group, Totals())
        self._probe([s for n, s in target.slots.items() if live.slots.get(n) != s])
        prepared = self._prepare_segment(api, paths, live, target)
        self._route_in(api, paths, live, target)  # 1. the new routing is live...
        self._apply_maps(api, paths, target, prepared)
        self._retire(api, live, target)  # 2. ...before the old is retired
        self._write_files(route, paths, target)

    def _route_in(self, api: RuntimeApi, paths: Paths, live: Layout, target: Layout) -> None:
        """Bring up and weight every slot the target uses, without leaving a request nowhere."""

        def moved(name: str) -> bool:
            have, want = live.slots.get(name), target.slots[name]
            return have is None or (have.host, have.port) != (want.host, want.port)

        wanted = [n for n in slot_names(self.slots) if n in target.slots]
        busy = [n for n in wanted if moved(n) and live.enabled(n)]  # serving elsewhere
        idle = [n for n in wanted if n not in busy and (moved(n) or not live.enabled(n))]
        self._bring_up(api, target, idle)  # slots that carry no traffic yet
        if busy:  # others carry the traffic while a serving slot changes address
            if live.canary and any(n[0] == live.canary for n in busy) and live.segment:
                # the segment routes to the group that moves: weights carry it meanwhile
                off = {k: v for k, v in meta_entries(live).items() if k not in SEGMENT_KEYS}
                api.replace_map(paths.meta, off)
            steady = [n for n in slot_names(self.slots) if n not in busy and live.enabled(n)]
            for name in steady:
                weight = target.slots[name].weight if name in target.slots else 0
                if sum(target.slots[n].weight for n in steady if n in target.slots) == 0:
                    weight = max(weight, 1)
                api.set_server(name, f"weight {weight}")
            for name in busy:
                api.set_server(name, "state drain")
            self._wait_idle(api, busy)  # what they are answering finishes at the old address
            for name in busy:
                api.set_server(name, "state maint")
            self._bring_up(api, target, busy)
        # the final weights, raised before lowered: the backend never has them all at 0 (a
        # blue-green switch from 0/256 to 256/0 would answer 503 in between)
        have = api.servers() if busy else live.slots
        for name in sorted(wanted, key=lambda n: _weight(have, n) >= target.slots[n].weight):
            api.set_server(name, f"weight {target.slots[name].weight}")

    def _retire(self, api: RuntimeApi, live: Layout, target: Layout) -> None:
        """Park the slots the plan no longer uses (nothing routes to them any more)."""
        for name in slot_names(self.slots):
            if name not in target.slots and live.enabled(name):
                api.set_server(name, "weight 0")
                api.set_server(name, "state maint")

    def _bring_up(self, api: RuntimeApi, target: Layout, names: list[str]) -> None:
        for name in names:
            want = target.slots[name]
            where = f"addr {want.host} port {want.port}"
            api.set_server(name, where)
            api.set_server(name, where, backend=f"be_{name[0]}")
            api.set_server(name, f"weight {want.weight}")
            api.set_server(name, "state ready")
        self._wait_up(api, names)

    def _wait_idle(self, api: RuntimeApi, names: list[str]) -> None:
        """Until no request is in flight on ``names`` (in ``be`` or their group's backend)."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            rows = api.stats()
            if not any(
                r["svname"] in names and as_int(r.get("scur")) > 0
                for r in rows
                if r["pxname"] in ("be", "be_a", "be_b")
            ):
                return
            time.sleep(0.005)

    def _probe(self, slots: list[Slot]) -> None:
        """Refuse the plan before changing anything when a new address accepts no connection."""
        deadline = time.monotonic() + self.ready_timeout
        for slot in slots:
            if not slot.enabled:
                continue
            while not port_open(slot.port, slot.host):
                if time.monotonic() > deadline:
                    raise AdapterError(
                        f"backend {addr(slot.host, slot.port)} did not accept a connection "
                        f"within {self.ready_timeout:g}s; nothing was changed"
                    )
                time.sleep(0.05)

    def _wait_up(self, api: RuntimeApi, names: list[str]) -> None:
        if not names:
            return
        deadline = time.monotonic() + self.ready_timeout
        down: list[str] = names
        while True:
            status = api.status()
            down = [n for n in names if not status.get(n, "").startswith("UP")]
            if not down or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if down:
            raise AdapterError(
                f"haproxy servers {', '.join(down)} did not pass their health check "
                f"within {self.ready_timeout:g}s"
            )

    @staticmethod
    def _prepare_segment(
        api: RuntimeApi, paths: Paths, live: Layout, target: Layout
    ) -> dict[Path, str]:
        """Load the new segment maps as uncommitted versions: HAProxy refuses a regex here,
        before anything changed. Returns {map: version}; empty when the segment is unchanged."""
        if live.segment == target.segment and live.canary == target.canary:
            return {}
        maps = segment_maps(target.segment if target.canary else None)
        return {
            paths.segment_map(name): api.prepare_map(paths.segment_map(name), entries)
            for name, entries in maps.items()
        }

    @staticmethod
    def _apply_maps(
        api: RuntimeApi, paths: Paths, target: Layout, prepared: Mapping[Path, str]
    ) -> None:
        meta = meta_entries(target)
        if prepared:
            # switch the segment off first, so a half-updated match never routes anybody
            off = {k: v for k, v in meta.items() if k not in SEGMENT_KEYS}
            api.replace_map(paths.meta, off)
            for map_path, version in prepared.items():
                api.commit_map(map_path, version)
        api.replace_map(paths.meta, meta)

    def observe(self, route: RouteRef) -> RoutePlan:
        paths = self.paths(route)
        if self.process.running_pid(paths) is None:
            raise AdapterError(f"haproxy for {self._label(route)} is not running")
        live = RuntimeApi(paths.admin).layout(paths.meta)

        def backend(group: str | None) -> Backend | None:
            if group is None or group not in live.candidates:
                return None
            addresses = tuple(
                addr(slot.host, slot.port)
                for name in slot_names(self.slots, group)
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
                assert group is not None
                for name in slot_names(self.slots, group):
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


def _weight(slots: Mapping[str, Slot], name: str) -> int:
    slot = slots.get(name)
    return slot.weight if slot is not None and slot.enabled else 0


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_text(text)
    os.replace(tmp, path)
