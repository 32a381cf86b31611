"""What every router's counters promise (ports.metrics.RouterCounters), checked on each kind.

- memory: the memory router counts what it is told it served (``serve``); the harness tells it
  exactly what a proxy following the live plan would have sent each candidate.
- haproxy: ``HaproxyCounters`` over one real HAProxy for the module, with real requests sent
  through it; what each candidate served is what the load generator saw answered by it.

Every test gives its versions fresh candidate names, so it starts from zero on a shared proxy.
The contract: a candidate counts only what it served, its 5xx among them; counters are per
candidate and only for the candidates the live plan names; they never go down while a candidate
stays live (weights moving, the same plan applied again); a stopped proxy is AdapterError.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.adapters.routers.haproxy import HaproxyCounters
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.errors import AdapterError
from shipyard.ports.metrics import Counters, RouterCounters
from shipyard.ports.routers import Backend, RoutePlan, RouteRef, TrafficRouter
from tests.contract.support import RealHaproxy, real_haproxy
from tests.integration.routers.conftest import free_port
from tests.support import loadgen

KINDS = ["memory", "haproxy"]  # one HAProxy for the module: each test takes < 1 s
_fresh = itertools.count(1)


@dataclass
class Harness:
    kind: str
    router: TrafficRouter
    counters: RouterCounters
    route: RouteRef
    send: Callable[[int], Counter[str]]  # n requests by the live plan -> served per candidate
    good: Backend
    other: Backend
    failing: Backend  # answers every request with a 500

    def fresh(self, backend: Backend) -> Backend:
        """The same instances under a candidate name no test used before."""
        return Backend(f"{backend.candidate}-{next(_fresh)}", backend.addresses)

    def read(self) -> dict[str, Counters]:
        return self.counters.counters(self.route)


def _memory_send(
    router: MemoryRouter, route: RouteRef, failing: str
) -> Callable[[int], Counter[str]]:
    """Serve n requests as a proxy following the live plan would (canary share rounded)."""

    def send(n: int) -> Counter[str]:
        plan = router.observe(route)
        served: Counter[str] = Counter()
        to_canary = round(n * plan.canary_weight / 100) if plan.canary else 0
        for backend, count in ((plan.stable, n - to_canary), (plan.canary, to_canary)):
            if backend is None or count == 0:
                continue
            errors = count if backend.candidate.startswith(failing) else 0
            router.serve(route, backend.candidate, count, errors, latencies=[0.001] * count)
            served[backend.candidate] += count
        return served

    return send


def _haproxy_send(route: RouteRef, router: TrafficRouter) -> Callable[[int], Counter[str]]:
    def send(n: int) -> Counter[str]:
        plan = router.observe(route)
        names = {b.candidate.split("-")[0]: b.candidate for b in (plan.stable, plan.canary) if b}
        result = loadgen.run(f"http://127.0.0.1:{route.listen_port}/", requests=n, concurrency=4)
        assert not result.errors and result.total == n, result
        answered = result.versions + result.version_5xx  # the backends' own names
        return Counter({names[version]: count for version, count in answered.items()})

    return send


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealHaproxy]:
    with real_haproxy(
        tmp_path_factory.mktemp("counters"), good=(1, 0.0), other=(1, 0.0), failing=(1, 1.0)
    ) as real:
        yield real


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "memory":
        memory = MemoryRouter()
        route = RouteRef("contract", "prod", tmp_path / "router", free_port())
        h = Harness(
            "memory",
            memory,
            memory,
            route,
            _memory_send(memory, route, "failing"),
            Backend("good", ("127.0.0.1:10001",)),
            Backend("other", ("127.0.0.1:10002",)),
            Backend("failing", ("127.0.0.1:10003",)),
        )
    else:
        real: RealHaproxy = request.getfixturevalue("haproxy")
        named = real.backends.by_name
        h = Harness(
            "haproxy",
            real.router,
            HaproxyCounters(),
            real.route,
            _haproxy_send(real.route, real.router),
            named["good"],
            named["other"],
            named["failing"],
        )
    h.router.ensure(h.route)
    return h


def test_kind_matches_the_router_kind(harness: Harness) -> None:
    assert harness.counters.kind == harness.router.kind == harness.kind


def test_fresh_candidates_start_at_zero_and_only_live_ones_are_reported(
    harness: Harness,
) -> None:
    stable, canary = harness.fresh(harness.good), harness.fresh(harness.other)
    harness.router.apply(harness.route, RoutePlan(stable, canary, 50))

    counts = harness.read()

    assert set(counts) == {stable.candidate, canary.candidate}
    assert all((c.requests, c.errors_5xx) == (0, 0) for c in counts.values())


def test_counts_only_what_each_candidate_served(harness: Harness) -> None:
    stable, canary = harness.fresh(harness.good), harness.fresh(harness.other)
    harness.router.apply(harness.route, RoutePlan(stable, canary, 50))

    served = harness.send(40)
    counts = harness.read()

    assert sum(served.values()) == 40 and set(served) == {stable.candidate, canary.candidate}
    assert {name: c.requests for name, c in counts.items()} == dict(served)
    assert {c.errors_5xx for c in counts.values()} == {0}
    assert harness.read() == counts  # reading counts nothing


def test_5xx_are_counted_for_the_candidate_that_answered_them(harness: Harness) -> None:
    stable, canary = harness.fresh(harness.good), harness.fresh(harness.failing)
    harness.router.apply(harness.route, RoutePlan(stable, canary, 100))

    served = harness.send(10)
    harness.router.apply(harness.route, RoutePlan(stable, canary, 0))
    served += harness.send(6)
    counts = harness.read()

    assert counts[canary.candidate].requests == counts[canary.candidate].errors_5xx == 10
    assert (counts[stable.candidate].requests, counts[stable.candidate].errors_5xx) == (6, 0)
    assert served == Counter({canary.candidate: 10, stable.candidate: 6})


def test_a_candidate_that_leaves_the_plan_is_no_longer_reported(harness: Harness) -> None:
    stable, canary = harness.fresh(harness.good), harness.fresh(harness.other)
    harness.router.apply(harness.route, RoutePlan(stable, canary, 50))
    harness.send(10)

    harness.router.apply(harness.route, RoutePlan(stable=stable))  # aborted

    assert set(harness.read()) == {stable.candidate}


def _never_lower(before: Counters, after: Counters) -> None:
    assert after.requests >= before.requests and after.errors_5xx >= before.errors_5xx
    for bound, count in before.latency_buckets.items():
        assert after.latency_buckets.get(bound, 0.0) >= count


def test_counters_are_monotonic_while_the_candidates_stay_live(harness: Harness) -> None:
    stable, canary = harness.fresh(harness.good), harness.fresh(harness.failing)
    steps = [
        RoutePlan(stable, canary, 0),
        RoutePlan(stable, canary, 25),
        RoutePlan(stable, canary, 25),  # the same plan again
        RoutePlan(stable, canary, 100),
        RoutePlan(stable, canary, 5),
    ]
    total: Counter[str] = Counter()
    last: dict[str, Counters] = {}
    for plan in steps:
        harness.router.apply(harness.route, plan)
        for _ in range(2):
            now = harness.read()
            for name, before in last.items():
                _never_lower(before, now[name])
            assert {n: c.requests for n, c in now.items() if c.requests} == +total
            last = now
            total += harness.send(8)
    assert sum(total.values()) == 8 * 2 * len(steps)


def test_latency_buckets_when_present_are_cumulative_and_cover_every_answer(
    harness: Harness,
) -> None:
    stable = harness.fresh(harness.good)
    harness.router.apply(harness.route, RoutePlan(stable=stable))
    harness.send(12)

    counts = harness.read()[stable.candidate]

    if not counts.latency_buckets:
        pytest.skip(f"{harness.kind} does not measure latencies")
    bounds = list(counts.latency_buckets)
    values = [counts.latency_buckets[b] for b in bounds]
    assert bounds == sorted(bounds) and bounds[-1] == math.inf
    assert values == sorted(values)  # cumulative
    assert values[-1] == counts.requests == 12


def test_a_stopped_proxy_is_an_adapter_error(harness: Harness) -> None:
    harness.router.apply(harness.route, RoutePlan(stable=harness.fresh(harness.good)))
    harness.router.stop(harness.route)

    with pytest.raises(AdapterError):
        harness.read()
