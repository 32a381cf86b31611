"""Router kinds by name: the one place that knows which classes exist, what they count with and
which programs they need."""

from __future__ import annotations

from shipyard.adapters.routers.haproxy import HAPROXY, HaproxyCounters, HaproxyRouter
from shipyard.adapters.tools import Tool, missing, require
from shipyard.errors import InvalidError
from shipyard.ports.metrics import RouterCounters
from shipyard.ports.routers import MissingBinary, TrafficRouter

ROUTERS: dict[str, type[TrafficRouter]] = {cls.kind: cls for cls in (HaproxyRouter,)}
"""What users are offered; a test suite adds the memory router with ``register_router``."""
COUNTERS: dict[str, type[RouterCounters]] = {cls.kind: cls for cls in (HaproxyCounters,)}
# the programs a kind runs; a kind not named here needs none
REQUIREMENTS: dict[str, tuple[Tool, ...]] = {HaproxyRouter.kind: (HAPROXY,)}


def register_router(cls: type[TrafficRouter], counters: type[RouterCounters]) -> None:
    """Make one more kind available (a plugin's, or a test's in-memory twin)."""
    ROUTERS[cls.kind] = cls
    COUNTERS[cls.kind] = counters


def missing_binary(kind: str) -> MissingBinary | None:
    """The first program router ``kind`` needs and this server lacks, for reading config
    (services reach it as ``Services.router_binary``; unknown kinds are the schema's to refuse)."""
    for tool in missing(REQUIREMENTS.get(kind, ())):
        return MissingBinary(kind, tool.name, tool.install)
    return None


def _known(kind: str) -> None:
    if kind not in ROUTERS:
        known = ", ".join(sorted(ROUTERS))
        raise InvalidError(f"unknown router kind {kind!r}; known: {known}")


def unmet_requirements(kind: str) -> tuple[Tool, ...]:
    """The programs router ``kind`` needs that are not on PATH (for config validation)."""
    _known(kind)
    return missing(REQUIREMENTS.get(kind, ()))


def check_requirements(kind: str) -> None:
    """Raise MissingToolError (with the install command) when ``kind`` cannot run here."""
    _known(kind)
    require(REQUIREMENTS.get(kind, ()), f"router kind {kind}")


class RouterRegistry:
    """One instance per kind per server, so a router can supervise the proxies it started.

    Asking for a kind checks its requirements first, so a missing ``haproxy`` fails the caller
    (a deployment) with the install command instead of failing every tick later."""

    def __init__(self) -> None:
        self._made: dict[str, TrafficRouter] = {}

    def __call__(self, kind: str) -> TrafficRouter:
        check_requirements(kind)
        if kind not in self._made:
            self._made[kind] = ROUTERS[kind]()
        return self._made[kind]


class CountersRegistry:
    """The metrics side of each router kind, by router kind; a router that counts itself (the
    memory twin) is the very instance ``routers`` made."""

    def __init__(self, routers: RouterRegistry) -> None:
        self._routers = routers
        self._made: dict[str, RouterCounters] = {}

    def __call__(self, kind: str) -> RouterCounters:
        _known(kind)
        if kind not in self._made:
            router = self._routers(kind)
            self._made[kind] = router if isinstance(router, COUNTERS[kind]) else COUNTERS[kind]()
        return self._made[kind]
