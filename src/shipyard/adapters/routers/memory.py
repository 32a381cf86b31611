"""A router that only remembers the plan: for unit tests of the rollout engine.

It validates plans like the real routers, keeps one plan per environment, and can be told to
count traffic (``serve``) so counters() has something to report, latencies included: it is the
memory twin of both ``ports.routers.TrafficRouter`` and ``ports.metrics.RouterCounters``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from shipyard.adapters.routers.validate import check_plan, count_latencies, cumulative_buckets
from shipyard.errors import AdapterError
from shipyard.ports.metrics import Counters
from shipyard.ports.routers import Capability, RoutePlan, RouteRef


class MemoryRouter:
    kind: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)

    def __init__(self) -> None:
        self.running: set[tuple[str, str]] = set()
        self.plans: dict[tuple[str, str], RoutePlan] = {}
        self.counts: dict[tuple[str, str], dict[str, Counters]] = {}
        self.applied: list[tuple[RouteRef, RoutePlan]] = []  # every apply, in order
        self.fail_next: str | None = None  # set to make the next apply raise AdapterError

    @staticmethod
    def _key(route: RouteRef) -> tuple[str, str]:
        return (route.project, route.environment)

    def ensure(self, route: RouteRef) -> None:
        self.running.add(self._key(route))
        self.plans.setdefault(self._key(route), RoutePlan(stable=None))

    def apply(self, route: RouteRef, plan: RoutePlan) -> None:
        check_plan(plan, mirror=True)
        if self.fail_next is not None:
            message, self.fail_next = self.fail_next, None
            raise AdapterError(message)
        self.ensure(route)
        self.plans[self._key(route)] = plan
        self.applied.append((route, plan))

    def _check_running(self, route: RouteRef) -> None:
        if self._key(route) not in self.running:
            raise AdapterError(f"router for {route.project}/{route.environment} is not running")

    def observe(self, route: RouteRef) -> RoutePlan:
        self._check_running(route)
        return self.plans[self._key(route)]

    def serve(
        self,
        route: RouteRef,
        candidate: str,
        requests: int,
        errors_5xx: int = 0,
        latencies: Iterable[float] = (),
    ) -> None:
        """Pretend ``requests`` requests reached ``candidate`` (``errors_5xx`` of them failed).

        ``latencies`` (seconds, any number of them) go into ``latency_buckets`` with the bounds
        the real routers use (``validate.LATENCY_BOUNDS``). A candidate that was never given a
        latency reports no buckets, like a router that cannot measure them.
        """
        counts = self.counts.setdefault(self._key(route), {})
        old = counts.get(candidate, Counters(0, 0))
        buckets = dict(old.latency_buckets)
        added = cumulative_buckets(count_latencies(latencies))
        if buckets or added[float("inf")]:
            buckets = {le: buckets.get(le, 0.0) + n for le, n in added.items()}
        counts[candidate] = Counters(
            old.requests + requests, old.errors_5xx + errors_5xx, latency_buckets=buckets
        )

    def counters(self, route: RouteRef) -> dict[str, Counters]:
        """Like a real proxy's stats: unreadable (AdapterError) while the router is stopped."""
        self._check_running(route)
        plan = self.plans.get(self._key(route), RoutePlan(stable=None))
        counts = self.counts.get(self._key(route), {})
        live = [b.candidate for b in (plan.stable, plan.canary) if b is not None]
        return {c: counts.get(c, Counters(0, 0)) for c in live}

    def stop(self, route: RouteRef) -> None:
        self.running.discard(self._key(route))
