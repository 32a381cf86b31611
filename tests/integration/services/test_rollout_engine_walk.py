"""A seeded random walk over the real engine, services and SQLite, with memory adapters.

The smaller twin of ``tests/unit/domain/test_rollout_convergence.py``: here the faults are the
adapters' own (router refusing routes, an instance killed, the metric provider down, a target
that cannot stop a version, an engine restart), and the commands go through the services. After
every step the environment's rollout is terminal, due, or paused naming the action it awaits;
once the faults stop and a human goes on wherever it waits, every rollout ends, every deployment
is finished, and the router routes what the rollout says.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.metrics.memory import MemoryProvider
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime
from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import DeploymentState
from shipyard.domain.rollouts import Phase, Rollout
from shipyard.errors import AdapterError, ShipyardError
from shipyard.ports.routers import RouteRef
from shipyard.ports.targets import DeploySpec
from shipyard.services import deployments, projects, releases, rollouts
from shipyard.services.context import Services
from tests.integration.services.test_rollout_faults import BrokenRouter
from tests.support.runtime import memory_runtime, shop_repo, shop_yaml

pytestmark = pytest.mark.slow

SEQUENCES = 16
STEPS = 30
T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
ADA = Actor("ada", Role.DEPLOYER)
BOB = Actor("bob", Role.APPROVER)
ROOT = Actor("root", Role.ADMIN)
REF = ("shop", "production")
QUERY = 'sum(rate(checkout_failures_total{{version="{v}"}}[10s]))'

CONFIG = shop_yaml("""\
environments:
  - name: production
    target: {kind: memory}
    router: {port: 18997}
    policy: walk
policies:
  walk:
    steps:
      - set_weight: 10
      - analysis: {checks: [errors, checkout], interval: 10s, duration: 30s}
      - approval: {required: 1}
      - set_weight: 50
      - pause: 1m
  careful:
    on_error: pause
    consecutive_error_limit: 2
    steps:
      - set_weight: 20
      - analysis: {checks: [errors], interval: 10s, duration: 20s}
      - pause: {}
checks:
  errors: {metric: error_ratio, judge: threshold, threshold: {max: 0.05}}
  checkout:
    provider: prometheus
    query: sum(rate(checkout_failures_total{version="{{version}}"}[{{interval}}]))
    threshold: {max: 2}
""")


class SwitchableTarget(MemoryTarget):
    stuck = False

    def retire(self, spec: DeploySpec, candidate: str) -> None:
        if SwitchableTarget.stuck:
            raise AdapterError(f"could not stop {candidate}")
        super().retire(spec, candidate)


class Walk:
    def __init__(self, rt: Runtime, router: BrokenRouter, clock: FixedClock, seed: int) -> None:
        self.rt, self.router, self.clock = rt, router, clock
        self.rng = random.Random(seed)
        self.prom = MemoryProvider()
        target = SwitchableTarget()
        rt.services = replace(
            rt.services, metrics=lambda source: self.prom, targets=lambda kind: target
        )
        self.worker = rt.worker()
        self.seen: Counter[str] = Counter()

    @property
    def svc(self) -> Services:
        return self.rt.services

    def rollout(self) -> Rollout | None:
        with self.svc.uow() as uow:
            project = uow.projects.get("shop")
            assert project is not None
            return uow.rollouts.latest(project, "production")

    def serve(self, r: Rollout) -> None:
        ref = RouteRef("shop", "production", self.svc.state_dir / "shop/production/router", 18997)
        bad = self.rng.random() < 0.3
        self.router.serve(ref, r.canary, 100, 30 if bad else 1)
        if r.stable:
            self.router.serve(ref, r.stable, 900, 9)
        for v, value in ((r.canary, 9.0 if bad else 0.5), (r.stable, 0.5)):
            if v:
                self.prom.set(QUERY.format(v=v), value)

    def fault(self) -> None:
        kind = self.rng.choice(["router", "kill", "metric", "stuck", "restart", "heal"])
        self.seen[f"fault:{kind}"] += 1
        r = self.rollout()
        if kind == "router":
            self.router.broken = "haproxy: runtime API refused the connection"
        elif kind == "kill" and r is not None:
            MemoryTarget.live.get(REF, set()).discard(self.rng.choice([r.canary, r.stable]))
        elif kind == "metric":
            self.prom.down = True
        elif kind == "stuck":
            SwitchableTarget.stuck = True
        elif kind == "restart":
            self.worker = self.rt.worker()  # a new engine: nothing applied in memory
        else:
            self.heal()

    def heal(self) -> None:
        self.router.broken = None
        self.prom.down = False
        SwitchableTarget.stuck = False

    def command(self) -> None:
        name = self.rng.choice(["promote", "full", "pause", "resume", "abort", "approve"])
        do: dict[str, Callable[[], object]] = {
            "promote": lambda: rollouts.promote(self.svc, ADA, "shop", "production"),
            "full": lambda: rollouts.promote(self.svc, ROOT, "shop", "production", full=True),
            "pause": lambda: rollouts.pause(self.svc, ADA, "shop", "production"),
            "resume": lambda: rollouts.resume(self.svc, ADA, "shop", "production"),
            "abort": lambda: rollouts.abort(self.svc, ADA, "shop", "production"),
            "approve": lambda: rollouts.promote(self.svc, BOB, "shop", "production"),
        }
        try:
            do[name]()
            self.seen[f"command:{name}"] += 1
        except ShipyardError:
            self.seen[f"refused:{name}"] += 1

    def check(self) -> None:
        r = self.rollout()
        assert r is not None
        self.seen[f"phase:{r.phase.value}"] += 1
        if not r.active:
            return
        if r.due_at is None:
            assert r.phase is Phase.PAUSED and r.awaiting, r

    def step(self) -> None:
        roll = self.rng.random()
        r = self.rollout()
        if roll < 0.45:
            if r is not None and r.active:
                self.serve(r)
            self.clock.advance(seconds=self.rng.choice([1, 10, 10, 30, 65]))
            self.worker.drain()
            self.seen["action:tick"] += 1
        elif roll < 0.7:
            self.fault()
        else:
            self.command()
        self.check()

    def converge(self) -> Rollout:
        self.heal()
        for _ in range(80):
            r = self.rollout()
            assert r is not None
            if not r.active:
                return r
            if r.phase is Phase.PAUSED and r.due_at is None:
                verb = "resume" if r.awaiting.startswith("rollout resume") else "full"
                try:
                    if verb == "resume":
                        rollouts.resume(self.svc, ADA, "shop", "production")
                    else:
                        rollouts.promote(self.svc, ROOT, "shop", "production", full=True)
                except ShipyardError:
                    rollouts.promote(self.svc, ROOT, "shop", "production", full=True)
            self.serve(r)
            self.clock.advance(seconds=65)
            self.worker.drain()
        raise AssertionError(f"did not end: {self.rollout()}")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Runtime, BrokenRouter, FixedClock]]:
    clock, router = FixedClock(T0), BrokenRouter()
    with memory_runtime(tmp_path, clock=clock, router=router) as rt:
        yield rt, router, clock


def test_the_engine_converges_through_random_faults_and_commands(
    tmp_path: Path, world: tuple[Runtime, BrokenRouter, FixedClock]
) -> None:
    rt, router, clock = world
    repo = shop_repo(tmp_path, CONFIG)
    projects.add_project(rt.services, ROOT, str(repo.path))
    _, rc = releases.cut_release(rt.services, ADA, "shop")
    rt.worker().drain()
    deployments.deploy(rt.services, ADA, "shop", rc.name, "production")
    rt.worker().drain()
    seen: Counter[str] = Counter()
    for seed in range(SEQUENCES):
        walk = Walk(rt, router, clock, seed)
        r = walk.rollout()
        assert r is not None
        live = MemoryTarget.live.setdefault(REF, set())
        serving = r.canary if r.phase is Phase.PROMOTED else r.stable
        if serving:
            live.add(serving)  # what supervision would have restarted
        policy = walk.rng.choice(["walk", "careful"])
        if r.phase is Phase.ROLLED_BACK and walk.rng.random() < 0.5:
            d = rollouts.retry(rt.services, ADA, "shop", "production")
            seen["action:retry"] += 1
        else:
            fix = repo.commit(f"fix: {seed} (#{seed + 10})", {"app.py": f"V = {seed + 2}\n"})
            rc_next = releases.pick(rt.services, ADA, "shop", "1.0.0", [fix])
            walk.worker.drain()
            d = deployments.deploy(
                rt.services, ADA, "shop", rc_next.name, "production", policy=policy
            )
        walk.worker.drain()
        for _ in range(STEPS):
            walk.step()
        end = walk.converge()
        seen.update(walk.seen)
        seen[f"ended:{end.phase.value}"] += 1
        done, _ = deployments.get_deployment(rt.services, ADA, end.deployment_id)
        assert done.state in (DeploymentState.SUCCEEDED, DeploymentState.FAILED), done
        assert end.deployment_id == d.id
        plan = router.plans[REF]
        if not end.not_done:  # the router routes what the rollout says, all of it
            want = end.canary if end.phase is Phase.PROMOTED else end.stable
            assert plan.stable is not None and plan.stable.candidate == want
            assert plan.canary is None
    print("engine walk:", ", ".join(f"{k}={n}" for k, n in sorted(seen.items())))
    assert seen["ended:promoted"] and seen["ended:rolled_back"]
    assert all(seen[f"fault:{k}"] for k in ("router", "kill", "metric", "stuck", "restart"))
