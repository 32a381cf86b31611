"""The in-memory router keeps plans like the real one; the registry names the kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.routers.registry import ROUTERS, RouterRegistry
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.routers import Backend, Capability, Counters, RoutePlan, RouteRef, SegmentMatch

ROUTE = RouteRef("shop", "prod", Path("/nonexistent"), 8080)
V1 = Backend("v1", ("127.0.0.1:9001",))
V2 = Backend("v2", ("127.0.0.1:9002",))


def test_memory_router_keeps_the_plan_and_counts() -> None:
    router = MemoryRouter()
    with pytest.raises(AdapterError, match="not running"):
        router.observe(ROUTE)
    router.ensure(ROUTE)
    assert router.observe(ROUTE) == RoutePlan(stable=None)
    plan = RoutePlan(V1, V2, 25.0, SegmentMatch("cookie", "session", negate=True), 5.0)
    router.apply(ROUTE, plan)
    router.apply(ROUTE, plan)  # idempotent
    assert router.observe(ROUTE) == plan
    router.serve(ROUTE, "v2", 10, 2)
    assert router.counters(ROUTE) == {"v1": Counters(0, 0), "v2": Counters(10, 2)}
    with pytest.raises(InvalidError, match="no canary"):
        router.apply(ROUTE, RoutePlan(V1, canary_weight=5))
    router.fail_next = "proxy down"
    with pytest.raises(AdapterError, match="proxy down"):
        router.apply(ROUTE, RoutePlan(V1))
    assert router.observe(ROUTE) == plan
    router.stop(ROUTE)
    with pytest.raises(AdapterError):
        router.observe(ROUTE)


def test_registry_makes_one_router_per_kind_and_names_the_known_ones() -> None:
    registry = RouterRegistry()
    assert isinstance(registry("haproxy"), HaproxyRouter)
    assert registry("memory") is registry("memory")
    with pytest.raises(InvalidError, match="unknown router kind 'nginx'; known: haproxy, memory"):
        registry("nginx")
    assert HaproxyRouter.capabilities == set(Capability)
    assert set(ROUTERS) == {"haproxy", "memory"}
