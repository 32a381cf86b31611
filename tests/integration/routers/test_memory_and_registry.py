"""The in-memory router keeps plans like the real one; the registry names the kinds; the checks
and bucket bounds every router shares."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from shipyard.adapters.routers.haproxy import HaproxyCounters, HaproxyRouter
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.routers.registry import (
    ROUTERS,
    CountersRegistry,
    RouterRegistry,
    check_requirements,
    unmet_requirements,
)
from shipyard.adapters.routers.validate import (
    LATENCY_BOUNDS,
    bucket_of,
    check_plan,
    cumulative_buckets,
)
from shipyard.errors import AdapterError, InvalidError, MissingToolError
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


def test_memory_router_counts_latencies_into_the_shared_buckets() -> None:
    router = MemoryRouter()
    router.apply(ROUTE, RoutePlan(V1, V2, 50.0))
    router.serve(ROUTE, "v1", 3, latencies=(0.001, 0.005, 0.2))
    router.serve(ROUTE, "v1", 2, 1, latencies=[0.0051, 30.0])
    router.serve(ROUTE, "v2", 4)  # no latencies given: no buckets, as from a router without them
    counters = router.counters(ROUTE)
    assert counters["v1"].requests == 5 and counters["v1"].errors_5xx == 1
    assert counters["v1"].latency_buckets == {
        **dict.fromkeys((0.005,), 2.0),
        **dict.fromkeys((0.01, 0.025, 0.05, 0.1), 3.0),
        **dict.fromkeys((0.25, 0.5, 1.0, 2.5, 5.0, 10.0), 4.0),
        math.inf: 5.0,
    }
    assert list(counters["v1"].latency_buckets) == list(LATENCY_BOUNDS)
    assert counters["v2"].latency_buckets == {}
    with pytest.raises(InvalidError, match="seconds >= 0"):
        router.serve(ROUTE, "v1", 1, latencies=[-1.0])


def test_bucket_bounds_are_prometheus_le() -> None:
    assert LATENCY_BOUNDS[-1] == math.inf and list(LATENCY_BOUNDS) == sorted(LATENCY_BOUNDS)
    assert [bucket_of(s) for s in (0.0, 0.005, 0.00500001, 10.0, 10.5)] == [0, 0, 1, 10, 11]
    assert cumulative_buckets([1] * 12)[math.inf] == 12
    with pytest.raises(ValueError, match="12 bucket counts"):
        cumulative_buckets([1, 2])


@pytest.mark.parametrize(
    ("segment", "needle"),
    [
        (SegmentMatch("cookie", "session", regex="a.*"), "only a header segment"),
        (SegmentMatch("path", value="/api", regex="a"), "not a regex"),
        (SegmentMatch("header", "X-Tier", "gold", regex="g.*"), "a value or a regex, not both"),
        (SegmentMatch("header", "X-Tier", regex=""), "cannot be empty"),
        (SegmentMatch("header", "X-Tier", regex="(unclosed"), "bad header segment regex"),
        (SegmentMatch("header", "X-Tier", regex="caf\u00e9"), "printable ASCII"),
        (SegmentMatch("header", "X-Tier", regex="a\nb"), "printable ASCII"),
        (SegmentMatch("header", "X-Tier", regex="(?x) a b # c"), "verbose"),
        (SegmentMatch("header", "X-Tier", regex="(?ix:a b)"), "verbose"),
        (SegmentMatch("header", "X-Tier", regex="a" * 513), "at most 512"),
    ],
)
def test_header_regex_segments_are_checked(segment: SegmentMatch, needle: str) -> None:
    with pytest.raises(InvalidError, match=needle) as caught:
        check_plan(RoutePlan(V1, V2, segment=segment))
    assert "\n" not in str(caught.value)


def test_a_header_regex_is_fine_alone_and_negated() -> None:
    for regex in ("^(gold|plat)", r"beta\d+$", "a b#c;d", r"\x41"):
        check_plan(RoutePlan(V1, V2, segment=SegmentMatch("header", "X-Tier", regex=regex)))
        negated = SegmentMatch("header", "X-Tier", regex=regex, negate=True)
        check_plan(RoutePlan(V1, V2, segment=negated))


def test_registry_tells_a_kinds_missing_programs_and_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert unmet_requirements("haproxy") == ()  # installed on this machine
    assert unmet_requirements("memory") == ()
    with pytest.raises(InvalidError, match="unknown router kind 'lokal'"):
        unmet_requirements("lokal")
    monkeypatch.setenv("PATH", "/nonexistent")
    [tool] = unmet_requirements("haproxy")
    assert (tool.name, tool.install) == ("haproxy", "apt-get install haproxy")
    with pytest.raises(MissingToolError, match="install it: apt-get install haproxy"):
        check_requirements("haproxy")
    with pytest.raises(MissingToolError, match="needed by router kind haproxy"):
        RouterRegistry()("haproxy")  # asking for the kind checks, before anything runs
    check_requirements("memory")


def test_counters_come_from_the_metrics_side_of_each_kind() -> None:
    routers = RouterRegistry()
    counters = CountersRegistry(routers)
    assert counters("memory") is routers("memory")  # the memory twin counts what it routes
    assert isinstance(counters("haproxy"), HaproxyCounters)
    assert not hasattr(routers("haproxy"), "counters")  # the router port routes only
    with pytest.raises(InvalidError, match="unknown router kind"):
        counters("nope")
