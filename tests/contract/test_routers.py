"""What every traffic router promises (ports.routers.TrafficRouter), checked on each implementation.

- memory: remembers the plan per environment; the engine's unit tests' stand-in. Its backends
  are addresses nobody listens on (it never sends a request).
- haproxy: one real HAProxy for the whole module, with stdlib backends behind it; every test
  starts from the same plan (stable only), so the order of the tests does not matter.

The contract: what ``observe`` reads back after ``apply`` is the plan applied (weights, segment,
mirror, as far as the router's capabilities go); applying a plan again changes nothing; a plan
that cannot be applied is refused with InvalidError and leaves the live plan as it was; a stopped
router cannot be observed (AdapterError) and ``ensure`` brings it back with its last plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.errors import AdapterError, InvalidError
from shipyard.ports.routers import (
    Backend,
    Capability,
    RoutePlan,
    RouteRef,
    SegmentMatch,
    TrafficRouter,
)
from tests.contract.support import RealHaproxy, real_haproxy
from tests.integration.routers.conftest import free_port

KINDS = ["memory", "haproxy"]  # one HAProxy for the module: each test takes < 0.5 s


@dataclass
class Harness:
    kind: str
    router: TrafficRouter
    route: RouteRef
    stable: Backend  # two instances
    canary: Backend
    other: Backend

    @property
    def baseline(self) -> RoutePlan:
        return RoutePlan(stable=self.stable)


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealHaproxy]:
    with real_haproxy(
        tmp_path_factory.mktemp("router"), v1=(2, 0.0), v2=(1, 0.0), v3=(1, 0.0)
    ) as real:
        yield real


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "memory":
        h = Harness(
            "memory",
            MemoryRouter(),
            RouteRef("contract", "prod", tmp_path / "router", free_port()),
            Backend("v1", ("127.0.0.1:10001", "127.0.0.1:10002")),
            Backend("v2", ("127.0.0.1:10003",)),
            Backend("v3", ("127.0.0.1:10004",)),
        )
    else:
        real: RealHaproxy = request.getfixturevalue("haproxy")
        named = real.backends.by_name
        h = Harness("haproxy", real.router, real.route, named["v1"], named["v2"], named["v3"])
    h.router.ensure(h.route)
    h.router.apply(h.route, h.baseline)
    return h


Plan = Callable[[Harness], RoutePlan]

# every plan a rollout step can ask for, with the capability it needs (None: any router)
PLANS: dict[str, tuple[Capability | None, Plan]] = {
    "empty": (None, lambda h: RoutePlan(stable=None)),
    "stable only": (None, lambda h: RoutePlan(stable=h.stable)),
    "canary at 0%": (Capability.WEIGHTS, lambda h: RoutePlan(h.stable, h.canary, 0)),
    "canary at 25%": (Capability.WEIGHTS, lambda h: RoutePlan(h.stable, h.canary, 25)),
    "canary at 12.5%": (Capability.WEIGHTS, lambda h: RoutePlan(h.stable, h.canary, 12.5)),
    "canary at 100%": (Capability.WEIGHTS, lambda h: RoutePlan(h.stable, h.canary, 100)),
    "header segment": (
        Capability.SEGMENTS,
        lambda h: RoutePlan(h.stable, h.canary, 0, SegmentMatch("header", "X-Segment", "beta")),
    ),
    "header regex segment": (
        Capability.SEGMENTS,
        lambda h: RoutePlan(
            h.stable, h.canary, 10, SegmentMatch("header", "X-Tenant", regex="^acme-[0-9]+$")
        ),
    ),
    "logged-out users": (
        Capability.SEGMENTS,
        lambda h: RoutePlan(h.stable, h.canary, 0, SegmentMatch("cookie", "session", negate=True)),
    ),
    "path segment": (
        Capability.SEGMENTS,
        lambda h: RoutePlan(h.stable, h.canary, 0, SegmentMatch("path", value="/beta/")),
    ),
    "mirror": (Capability.MIRROR, lambda h: RoutePlan(h.stable, h.canary, 0, mirror_percent=20)),
    "canary swapped": (Capability.WEIGHTS, lambda h: RoutePlan(h.stable, h.other, 50)),
    "promoted": (None, lambda h: RoutePlan(stable=h.canary)),
}


def _needs(harness: Harness, capability: Capability | None) -> None:
    if capability is not None and capability not in harness.router.capabilities:
        pytest.skip(f"{harness.kind} cannot route by {capability}")


def test_declares_its_kind_and_capabilities(harness: Harness) -> None:
    assert isinstance(harness.router.kind, str) and harness.router.kind == harness.kind
    assert harness.router.capabilities <= frozenset(Capability)


@pytest.mark.parametrize("name", list(PLANS))
def test_observe_after_apply_returns_the_plan_applied(harness: Harness, name: str) -> None:
    capability, make = PLANS[name]
    _needs(harness, capability)
    plan = make(harness)

    harness.router.apply(harness.route, plan)

    assert harness.router.observe(harness.route) == plan


def test_a_sequence_of_steps_reads_back_each_step(harness: Harness) -> None:
    """A whole canary rollout: each step is what observe reports, whatever came before."""
    _needs(harness, Capability.WEIGHTS)
    h = harness
    steps = [
        RoutePlan(h.stable, h.canary, 5),
        RoutePlan(h.stable, h.canary, 50),
        RoutePlan(h.stable, h.other, 50),  # the canary is replaced while it serves
        RoutePlan(h.stable, h.other, 100),
        RoutePlan(stable=h.other),  # promoted
        RoutePlan(h.other, h.stable, 10),  # and the old one back as a canary
        RoutePlan(stable=h.stable),  # aborted
    ]
    for plan in steps:
        h.router.apply(h.route, plan)
        assert h.router.observe(h.route) == plan


@pytest.mark.parametrize("name", ["stable only", "canary at 25%", "header segment", "mirror"])
def test_apply_is_idempotent(harness: Harness, name: str) -> None:
    capability, make = PLANS[name]
    _needs(harness, capability)
    plan = make(harness)

    harness.router.apply(harness.route, plan)
    first = harness.router.observe(harness.route)
    harness.router.apply(harness.route, plan)
    harness.router.apply(harness.route, make(harness))  # an equal plan, not the same object

    assert harness.router.observe(harness.route) == first == plan


def _with_stable(h: Harness, **fields: object) -> RoutePlan:
    return RoutePlan(**{"stable": h.stable, **fields})  # type: ignore[arg-type]


INVALID: dict[str, Plan] = {
    "weight above 100": lambda h: RoutePlan(h.stable, h.canary, 101),
    "negative weight": lambda h: RoutePlan(h.stable, h.canary, -1),
    "weight is NaN": lambda h: RoutePlan(h.stable, h.canary, float("nan")),
    "weight without a canary": lambda h: _with_stable(h, canary_weight=10),
    "stable and canary are one candidate": lambda h: RoutePlan(h.stable, h.stable, 10),
    "a backend without addresses": lambda h: RoutePlan(h.stable, Backend("v9", ()), 10),
    "an address twice": lambda h: RoutePlan(Backend("v9", ("127.0.0.1:9", "127.0.0.1:9"))),
    "a host name, not an IP": lambda h: RoutePlan(Backend("v9", ("localhost:80",))),
    "port out of range": lambda h: RoutePlan(Backend("v9", ("127.0.0.1:70000",))),
    "a candidate name with a space": lambda h: RoutePlan(Backend("v 9", ("127.0.0.1:9",))),
    "a segment without a canary": lambda h: _with_stable(
        h, segment=SegmentMatch("header", "X-Segment", "beta")
    ),
    "an unknown segment kind": lambda h: RoutePlan(
        h.stable, h.canary, 0, SegmentMatch("query", "a", "b")
    ),
    "a bad header regex": lambda h: RoutePlan(
        h.stable, h.canary, 0, SegmentMatch("header", "X-Tenant", regex="(unclosed")
    ),
    "a path segment not starting with /": lambda h: RoutePlan(
        h.stable, h.canary, 0, SegmentMatch("path", value="beta")
    ),
    "a header value with a line break": lambda h: RoutePlan(
        h.stable, h.canary, 0, SegmentMatch("header", "X-Segment", "a\r\nb")
    ),
    "mirror without a canary": lambda h: _with_stable(h, mirror_percent=5),
    "mirror above 100": lambda h: RoutePlan(h.stable, h.canary, 0, mirror_percent=150),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_an_invalid_plan_is_refused_and_changes_nothing(harness: Harness, name: str) -> None:
    h = harness
    live = RoutePlan(h.stable, h.canary, 25, SegmentMatch("header", "X-Segment", "beta"))
    h.router.apply(h.route, live)

    with pytest.raises(InvalidError) as caught:
        h.router.apply(h.route, INVALID[name](h))

    assert "\n" not in str(caught.value)  # one readable line
    assert h.router.observe(h.route) == live


def test_a_router_that_cannot_mirror_refuses_a_mirror(harness: Harness) -> None:
    if Capability.MIRROR in harness.router.capabilities:
        pytest.skip(f"{harness.kind} can mirror")
    h = harness
    with pytest.raises(InvalidError):
        h.router.apply(h.route, RoutePlan(h.stable, h.canary, 0, mirror_percent=10))
    assert h.router.observe(h.route) == h.baseline


def test_ensure_is_idempotent_and_keeps_the_plan(harness: Harness) -> None:
    h = harness
    plan = RoutePlan(h.stable, h.canary, 25)
    h.router.apply(h.route, plan)

    h.router.ensure(h.route)
    h.router.ensure(h.route)

    assert h.router.observe(h.route) == plan


def test_stop_then_observe_fails_with_adapter_error(harness: Harness) -> None:
    harness.router.stop(harness.route)

    with pytest.raises(AdapterError):
        harness.router.observe(harness.route)


def test_ensure_after_stop_brings_it_back_with_the_last_plan(harness: Harness) -> None:
    h = harness
    plan = RoutePlan(h.stable, h.canary, 25, SegmentMatch("cookie", "canary", "1"))
    h.router.apply(h.route, plan)
    h.router.stop(h.route)

    h.router.ensure(h.route)

    assert h.router.observe(h.route) == plan


def test_apply_to_a_stopped_router_starts_it_with_the_new_plan(harness: Harness) -> None:
    h = harness
    h.router.stop(h.route)
    plan = RoutePlan(h.stable, h.canary, 50)

    h.router.apply(h.route, plan)

    assert h.router.observe(h.route) == plan


def test_stop_is_idempotent(harness: Harness) -> None:
    harness.router.stop(harness.route)
    harness.router.stop(harness.route)

    with pytest.raises(AdapterError):
        harness.router.observe(harness.route)


def test_an_environment_never_started_cannot_be_observed(harness: Harness, tmp_path: Path) -> None:
    other = RouteRef("contract", "never", tmp_path / "never", free_port())

    with pytest.raises(AdapterError):
        harness.router.observe(other)
