"""Router kinds by name: the one place that knows which classes exist."""

from __future__ import annotations

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.errors import InvalidError
from shipyard.ports.routers import TrafficRouter

ROUTERS: dict[str, type[TrafficRouter]] = {cls.kind: cls for cls in (HaproxyRouter, MemoryRouter)}


class RouterRegistry:
    """One instance per kind per server, so a router can supervise the proxies it started."""

    def __init__(self) -> None:
        self._made: dict[str, TrafficRouter] = {}

    def __call__(self, kind: str) -> TrafficRouter:
        if kind not in self._made:
            cls = ROUTERS.get(kind)
            if cls is None:
                known = ", ".join(sorted(ROUTERS))
                raise InvalidError(f"unknown router kind {kind!r}; known: {known}")
            self._made[kind] = cls()
        return self._made[kind]
