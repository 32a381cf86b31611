"""Router kinds by name: the one place that knows which classes exist."""

from __future__ import annotations

import shutil

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.errors import InvalidError
from shipyard.ports.routers import MissingBinary, TrafficRouter

ROUTERS: dict[str, type[TrafficRouter]] = {cls.kind: cls for cls in (HaproxyRouter,)}
"""What users are offered; a test suite adds the memory router with ``register_router``."""

# kind -> (the program it runs, how to install it)
_BINARIES: dict[str, tuple[str, str]] = {"haproxy": ("haproxy", "apt-get install haproxy")}


def register_router(cls: type[TrafficRouter]) -> None:
    """Make one more kind available (a plugin's, or a test's in-memory twin)."""
    ROUTERS[cls.kind] = cls


def missing_binary(kind: str) -> MissingBinary | None:
    """The program a router of ``kind`` needs when it is not on this server's PATH."""
    needs = _BINARIES.get(kind)
    if needs is None or shutil.which(needs[0]) is not None:
        return None
    return MissingBinary(kind, needs[0], needs[1])


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
