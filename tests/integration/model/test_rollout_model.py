"""A model-based fault test of the rollout engine: random walks of what users and faults do.

Each sequence starts from the same built project (copied, so the builds run once), and takes
random steps: deploys with every policy (and of a release whose shipyard.yaml dropped the
router and the policy, so the environment changes between releases), aborts, rollbacks,
promotes, pauses, resumes, vetoes, traffic good and bad, time passing, and faults (instances
killed, the router dead or its binary missing, failing metric queries, a candidate that never
gets healthy, a target that cannot stop a version, the engine restarted while it holds a
lease). After every step the engine drains and the invariants are checked:

- every active rollout has a next action: it is due again, or waits on a named human action;
- at most one deployment runs and one rollout steers traffic per environment, and every
  accepted request is exactly one deployment;
- status is a reading of reality: the route the router holds is the one the rollout wants, and
  status counts the instances of each candidate that really run;
- every decision is explained (a message; terminal rollouts end with their outcome record).

At the end of each sequence the faults stay on and time passes: every rollout must converge to
a terminal state or a named human wait, never retry forever. Then the faults heal, humans act,
and everything must end. A coverage report asserts that every phase, step kind, action and
fault kind was reached. Real git, builds and SQLite; memory target, router and metrics.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.adapters.clock import FixedClock
from shipyard.adapters.metrics.memory import MemoryProvider
from shipyard.adapters.routers.memory import MemoryRouter
from shipyard.adapters.targets.memory import MemoryTarget
from shipyard.bootstrap import Runtime, bootstrap
from shipyard.domain import rollouts as ro
from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import Deployment, DeploymentState
from shipyard.domain.rollouts import Phase, Rollout
from shipyard.engine.worker import Worker
from shipyard.errors import AdapterError, ShipyardError
from shipyard.ports.metrics import Counters
from shipyard.ports.routers import RoutePlan, RouteRef
from shipyard.ports.targets import DeploySpec
from shipyard.services import deployments, projects, releases, rollouts
from tests.support import walk
from tests.support.gitrepo import GitRepo
from tests.support.runtime import shop_yaml

SEQUENCES = int(os.environ.get("SHIPYARD_MODEL_SEQUENCES", "200"))
STEPS = int(os.environ.get("SHIPYARD_MODEL_STEPS", "30"))
SEED = int(os.environ.get("SHIPYARD_MODEL_SEED", "20261204"))
# replay one failing sequence: SHIPYARD_MODEL_FIRST=n SHIPYARD_MODEL_SEQUENCES=1 SHIPYARD_MODEL_TRACE=1
FIRST = int(os.environ.get("SHIPYARD_MODEL_FIRST", "0"))
TRACE = bool(os.environ.get("SHIPYARD_MODEL_TRACE"))

ADA = Actor("ada", Role.DEPLOYER)
BOB = Actor("bob", Role.APPROVER)
ROOT = Actor("root", Role.ADMIN)
PORT = 18977
ENV = "production"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

POLICIES = """\
policies:
  canary:
    steps:
      - set_weight: 20
      - analysis: {checks: [errors], interval: 10s, duration: 30s}
      - set_weight: 50
      - pause: 20s
  gated:
    steps:
      - set_weight: 10
      - approval: {required: 1}
      - pause: {}
  segmented:
    steps:
      - segment: {match: {header: {name: x-beta, value: "1"}}}
      - mirror: {percent: 20}
      - set_weight: 30
      - analysis: {checks: [errors], interval: 10s, duration: 20s}
  business:
    steps:
      - set_weight: 10
      - analysis: {checks: [checkout], interval: 10s, duration: 30s}
  bluegreen:
    strategy: blue_green
    preview_checks: [errors]
    auto_switch: false
checks:
  errors: {metric: error_ratio, judge: threshold, threshold: {max: 0.05}, failure_limit: 1}
  checkout:
    provider: prometheus
    query: checkout_failures{version="{{version}}"}
    threshold: {max: 2}
"""

# release 1.0.0: behind the router, with a canary policy
ROUTED = shop_yaml(f"""\
environments:
  - name: {ENV}
    target: {{kind: memory}}
    router: {{port: {PORT}}}
    policy: canary
{POLICIES}""")

# release 1.1.0: the environment switched to a plain deploy, no router, no policy
PLAIN = shop_yaml(f"""\
environments:
  - name: {ENV}
    target: {{kind: memory}}
{POLICIES}""")

ROUTED_POLICIES = (None, "gated", "segmented", "business", "bluegreen")


class FaultyRouter(MemoryRouter):
    """The memory router, which can also be dead (a crashed HAProxy) or not installed."""

    def __init__(self) -> None:
        super().__init__()
        self.fault: str | None = None  # "dead" | "missing"

    def _check(self) -> None:
        if self.fault == "dead":
            raise AdapterError("router for shop/production is not running (connection refused)")
        if self.fault == "missing":
            raise AdapterError("cannot run haproxy: not installed (apt-get install haproxy)")

    def ensure(self, route: RouteRef) -> None:
        self._check()
        super().ensure(route)

    def apply(self, route: RouteRef, plan: RoutePlan) -> None:
        self._check()
        super().apply(route, plan)

    def observe(self, route: RouteRef) -> RoutePlan:
        self._check()
        return super().observe(route)

    def counters(self, route: RouteRef) -> dict[str, Counters]:
        self._check()
        return super().counters(route)


class StuckTarget(MemoryTarget):
    """The memory target, which can also fail to stop a version (a process that will not die)."""

    stuck = False

    def retire(self, spec: DeploySpec, candidate: str) -> None:
        if StuckTarget.stuck:
            raise AdapterError(f"{candidate} did not stop within 10s")
        super().retire(spec, candidate)


# --- the built project, once per session ----------------------------------------------------------


@dataclass(frozen=True)
class Built:
    root: Path  # holds data/ (database, artifacts, git mirror) to copy per sequence
    routed: tuple[str, ...]  # candidates whose snapshot has the router and policies
    plain: tuple[str, ...]  # candidates whose snapshot has neither


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("model")
    repo = GitRepo(root / "shop")
    repo.commit("chore: shipyard", {"shipyard.yaml": ROUTED, "app.py": "V = 1\n"})
    rt = bootstrap(root / "data", clock=FixedClock(T0 - timedelta(days=1)))
    try:
        projects.add_project(rt.services, ROOT, str(repo.path))
        _, rc1 = releases.cut_release(rt.services, ADA, "shop")
        names = [rc1.name]
        for v in (2, 3):
            fix = repo.commit(f"fix: v{v} (#{v})", {"app.py": f"V = {v}\n"})
            names.append(releases.pick(rt.services, ADA, "shop", "1.0.0", [fix]).name)
        repo.commit("chore: plain deploys (#9)", {"shipyard.yaml": PLAIN})
        _, plain = releases.cut_release(rt.services, ADA, "shop")
        rt.worker().drain()
    finally:
        rt.close()
    return Built(root, tuple(names), (plain.name,))


# --- one sequence ---------------------------------------------------------------------------------


@dataclass
class Coverage(walk.Coverage):
    steps: Counter[str] = field(default_factory=Counter)


@dataclass
class World:
    rt: Runtime
    clock: FixedClock
    router: FaultyRouter
    metrics: MemoryProvider
    built: Built
    rng: random.Random
    cov: Coverage
    worker: Worker
    accepted: set[int] = field(default_factory=set)  # deployment ids the services returned
    restarts: int = 0

    @property
    def svc(self):  # type: ignore[no-untyped-def]
        return self.rt.services

    def ref(self) -> RouteRef:
        return RouteRef("shop", ENV, self.svc.state_dir / "shop" / ENV / "router", PORT)

    def latest(self) -> Rollout | None:
        with self.svc.uow() as uow:
            return uow.rollouts.latest(uow.projects.get("shop"), ENV)  # type: ignore[arg-type]

    def history(self) -> list[Deployment]:
        with self.svc.uow() as uow:
            return list(uow.deployments.history(uow.projects.get("shop")))  # type: ignore[arg-type]

    def drain(self) -> None:
        self.worker.drain()


@contextmanager
def world(built: Built, where: Path, seed: int, cov: Coverage) -> Iterator[World]:
    """A fresh copy of the built project, wired to fresh fakes, with its own clock."""
    shutil.copytree(built.root / "data", where / "data")
    MemoryTarget.reset()
    clock = FixedClock(T0)
    rt = bootstrap(where / "data", clock=clock)
    router, metrics, target = FaultyRouter(), MemoryProvider(), StuckTarget()
    StuckTarget.stuck = False
    rt.services = replace(
        rt.services,
        routers=lambda kind: router,
        counters=lambda kind: router,
        metrics=lambda src: metrics,
        targets=lambda kind: target,
    )
    w = World(rt, clock, router, metrics, built, random.Random(seed), cov, _worker(rt, 0))
    try:
        yield w
    finally:
        rt.close()
        MemoryTarget.reset()
        shutil.rmtree(where, ignore_errors=True)


LEASE_S = 5.0


def _worker(rt: Runtime, n: int) -> Worker:
    return Worker(rt.services, owner=f"engine-{n}", lease_s=LEASE_S)


# --- actions and faults ---------------------------------------------------------------------------


def _active(w: World) -> Rollout | None:
    r = w.latest()
    return r if r is not None and r.active else None


def deploy(w: World) -> None:
    if w.rng.random() < 0.8:
        candidate, policy = w.rng.choice(w.built.routed), w.rng.choice(ROUTED_POLICIES)
    else:
        candidate, policy = w.rng.choice(w.built.plain), None
    d = deployments.deploy(w.svc, ADA, "shop", candidate, ENV, policy=policy)
    w.accepted.add(d.id)


def rollback(w: World) -> None:
    d = deployments.rollback(w.svc, ADA, "shop", ENV, reason="model")
    w.accepted.add(d.id)


def abort(w: World) -> None:
    rollouts.abort(w.svc, w.rng.choice((ADA, BOB)), "shop", ENV, reason="model")


def promote(w: World) -> None:
    rollouts.promote(w.svc, w.rng.choice((ADA, BOB)), "shop", ENV)


def promote_full(w: World) -> None:
    rollouts.promote(w.svc, BOB, "shop", ENV, full=True)


def pause(w: World) -> None:
    rollouts.pause(w.svc, ADA, "shop", ENV)


def resume(w: World) -> None:
    rollouts.resume(w.svc, ADA, "shop", ENV)


def veto(w: World) -> None:
    candidate = w.rng.choice(w.built.routed + w.built.plain)
    deployments.veto(w.svc, ADA, "shop", candidate, reason="model")


def _traffic(w: World, error_ratio: float) -> None:
    r = _active(w)
    if r is not None and w.router.fault is None:
        w.router.serve(w.ref(), r.canary, 200, int(200 * error_ratio))
        if r.stable:
            w.router.serve(w.ref(), r.stable, 600, 6)
        w.metrics.set(f'checkout_failures{{version="{r.canary}"}}', 10 * error_ratio)
    w.clock.advance(seconds=10)


def good_traffic(w: World) -> None:
    _traffic(w, 0.0)


def bad_traffic(w: World) -> None:
    _traffic(w, 0.5)


def time_passes(w: World) -> None:
    w.clock.advance(seconds=w.rng.choice((1, 5, 10, 30, 60, 300)))


def kill_instance(w: World) -> None:
    live = MemoryTarget.live.get(("shop", ENV), set())
    if live:
        live.discard(w.rng.choice(sorted(live)))


def router_dead(w: World) -> None:
    w.router.fault = "dead"


def router_missing(w: World) -> None:
    w.router.fault = "missing"


def router_heals(w: World) -> None:
    w.router.fault = None


def metrics_fail(w: World) -> None:
    w.metrics.down = True


def metrics_heal(w: World) -> None:
    w.metrics.down = False


def unhealthy_candidate(w: World) -> None:
    MemoryTarget.unhealthy.add(w.rng.choice(w.built.routed + w.built.plain))


def healthy_again(w: World) -> None:
    MemoryTarget.unhealthy.clear()


def target_stuck(w: World) -> None:
    StuckTarget.stuck = True


def target_unstuck(w: World) -> None:
    StuckTarget.stuck = False


def engine_restart(w: World) -> None:
    """The engine dies holding a rollout's lease (mid-tick); a new one starts and takes over."""
    r = _active(w)
    if r is not None:
        rollouts.claim(w.svc, w.worker.owner, LEASE_S, r.id)
    w.restarts += 1
    w.worker = _worker(w.rt, w.restarts)
    w.clock.advance(seconds=LEASE_S + 1)


ACTIONS: dict[str, tuple[int, Callable[[World], None]]] = {
    "deploy": (10, deploy),
    "rollback": (3, rollback),
    "abort": (4, abort),
    "promote": (5, promote),
    "promote_full": (2, promote_full),
    "pause": (3, pause),
    "resume": (3, resume),
    "veto": (1, veto),
    "good_traffic": (12, good_traffic),
    "bad_traffic": (5, bad_traffic),
    "time_passes": (8, time_passes),
}
FAULTS: dict[str, tuple[int, Callable[[World], None]]] = {
    "kill_instance": (3, kill_instance),
    "router_dead": (2, router_dead),
    "router_missing": (1, router_missing),
    "router_heals": (3, router_heals),
    "metrics_fail": (2, metrics_fail),
    "metrics_heal": (2, metrics_heal),
    "unhealthy_candidate": (1, unhealthy_candidate),
    "healthy_again": (2, healthy_again),
    "engine_restart": (2, engine_restart),
    "target_stuck": (1, target_stuck),
    "target_unstuck": (2, target_unstuck),
}


def describe(w: World) -> str:
    """One line of what runs, routes and is recorded, for a trace."""
    r = w.latest()
    plan = w.router.plans.get(("shop", ENV))
    routed = plan and (
        plan.stable and plan.stable.candidate,
        plan.canary and plan.canary.candidate,
        plan.canary_weight,
    )
    rollout = r and (r.id, r.canary, r.stable, r.phase.value, r.step, r.weight, r.last_error[:60])
    deps = [(d.id, d.candidate, d.mode.value, d.state.value) for d in w.history()[:3]]
    live = sorted(MemoryTarget.live.get(("shop", ENV), set()))
    return f"rollout {rollout} | live {live} | router {w.router.fault} {routed} | deps {deps}"


def step(w: World) -> str:
    name, outcome = walk.take_step(w, w.rng, w.cov, ACTIONS, FAULTS)
    w.drain()
    if TRACE:
        print(f"{name}: {outcome[:90]} | {describe(w)}")
    return name


# --- invariants -----------------------------------------------------------------------------------


def step_kind(step: object) -> str:
    return str(getattr(step, "kind", type(step).__name__))


def _routed(w: World, d: Deployment | None) -> bool:
    return d is not None and d.candidate in w.built.routed


def check(w: World, where: str) -> None:
    """Record every invariant that does not hold now (see the module docstring)."""
    bad = w.cov.violations
    history = w.history()
    ids = [d.id for d in history]
    if len(ids) != len(set(ids)) or set(ids) != w.accepted:
        bad.append(f"{where}: deployments {sorted(ids)} are not the accepted {sorted(w.accepted)}")
    if sum(d.state is DeploymentState.RUNNING for d in history) > 1:
        bad.append(f"{where}: more than one deployment runs in {ENV}")
    with w.svc.uow() as uow:
        active = [uow.rollouts.get(i) for i in uow.rollouts.active_ids()]
    steering = [r for r in active if r.phase in ro.ACTIVE_PHASES]  # not a warm old colour
    if len(steering) > 1:
        bad.append(f"{where}: {len(steering)} rollouts steer traffic in {ENV}")
    for r in active:
        w.cov.phases[r.phase.value] += 1
        if r.due_at is None and not walk.waits_on_human(r):
            bad.append(f"{where}: rollout {r.id} is {r.phase.value} with no next action")
    latest = w.latest()
    if latest is not None:
        w.cov.phases[latest.phase.value] += 1
        _explained(w, latest, where)
    _status_is_real(w, history, steering[0] if steering else None, where)


def _explained(w: World, r: Rollout, where: str) -> None:
    view = rollouts.explain(w.svc, ROOT, "shop", r.deployment_id)
    records = [e.record for e in view.records]
    steps = r.policy.steps
    w.cov.steps.update(step_kind(steps[x.step]) for x in records if x.step < len(steps))
    if any(not rec.message for rec in records):
        w.cov.violations.append(f"{where}: rollout {r.id} has a decision without a message")
    if not r.active and (
        not records or records[-1].kind not in ("promoted", "rolled_back", "retired")
    ):
        last = records[-1].kind if records else "nothing"
        w.cov.violations.append(f"{where}: rollout {r.id} is {r.phase.value}, last record {last}")


def _status_is_real(
    w: World, history: list[Deployment], active: Rollout | None, where: str
) -> None:
    bad = w.cov.violations
    current = next((d for d in history if d.state is DeploymentState.SUCCEEDED), None)
    live = MemoryTarget.live.get(("shop", ENV), set())
    _, rows = deployments.status(w.svc, ROOT, "shop")
    [row] = [x for x in rows if x.environment == ENV]
    shown = {i.candidate for i in row.instances}
    if shown != live:
        bad.append(f"{where}: status shows instances of {sorted(shown)}, running: {sorted(live)}")
    reading = row.reading
    assert reading is not None
    shown_runs = 1 if reading.candidate in live else 0  # the memory target runs one instance
    if reading.running != shown_runs or set(reading.others) != live - {reading.candidate}:
        bad.append(
            f"{where}: status reads {reading.candidate} x{reading.running} (others "
            f"{list(reading.others)}), running: {sorted(live)}"
        )
    if w.router.fault is not None or (active is not None and active.last_error):
        return  # the router cannot be read back; the rollout says why (checked above)
    newest = history[0] if history else None  # history is newest first
    if active is not None and not active.policy.flag_routed:
        want = ro.route_of(active)
        plan = w.router.plans.get(("shop", ENV))
        got = (
            (plan.stable.candidate if plan and plan.stable else None),
            (plan.canary.candidate if plan and plan.canary else None),
            plan.canary_weight if plan and plan.canary else 0.0,
        )
        expect = (
            want.stable,
            want.canary if want.weight or want.segment or want.mirror else None,
            want.weight if want.canary else 0.0,
        )
        if got[0] != expect[0] or (expect[1] is not None and got[1:] != expect[1:]):
            bad.append(f"{where}: the router routes {got}, the rollout wants {expect}")
    elif current is not None and _routed(w, newest) and newest is current:
        plan = w.router.plans.get(("shop", ENV))
        stable = plan.stable.candidate if plan and plan.stable else None
        if stable != current.candidate or (plan and plan.canary is not None):
            bad.append(f"{where}: the router serves {stable}, {current.candidate} succeeded last")


# --- the walk -------------------------------------------------------------------------------------


def converged(r: Rollout | None) -> bool:
    """Ended, waiting on a person, or promoted with the old version kept warm until a time."""
    if r is None or not r.active or walk.waits_on_human(r):
        return True
    return r.phase is Phase.PROMOTED and r.due_at is not None


def converge(w: World, where: str) -> None:
    """Faults stay on while time passes; then they heal and people finish what waits on them."""
    for _ in range(12):
        w.clock.advance(seconds=300)
        w.drain()
    r = _active(w)
    if not converged(r):
        assert r is not None
        w.cov.violations.append(
            f"{where}: still {r.phase.value} after an hour under faults "
            f"(router {w.router.fault}, metrics down {w.metrics.down}): {r.last_error}"
        )
    w.router.fault, w.metrics.down, StuckTarget.stuck = None, False, False
    MemoryTarget.unhealthy.clear()
    for _ in range(20):
        r = _active(w)
        if converged(r) and not (r is not None and walk.waits_on_human(r)):
            break
        if walk.waits_on_human(r):
            try:
                rollouts.promote(w.svc, BOB, "shop", ENV, full=True)
            except ShipyardError as exc:
                if TRACE:
                    print(f"end: promote refused: {exc.message} | {describe(w)}")
                rollouts.abort(w.svc, BOB, "shop", ENV, reason="model: end")
        w.clock.advance(seconds=60)
        w.drain()
    r = _active(w)
    if not converged(r):
        assert r is not None
        w.cov.violations.append(f"{where}: rollout {r.id} still {r.phase.value} after healing")
    check(w, f"{where} healed")


@pytest.mark.slow
def test_every_rollout_converges_and_status_tells_the_truth(
    built: Built, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    cov = Coverage()
    total = 0
    for n in range(FIRST, FIRST + SEQUENCES):
        seed = SEED * 1000 + n
        with world(built, tmp_path / f"s{n}", seed, cov) as w:
            for k in range(STEPS):
                name = step(w)
                total += 1
                check(w, f"seed {seed} step {k} ({name})")
            converge(w, f"seed {seed} end")
        replay = (
            f"replay: SHIPYARD_MODEL_FIRST={n} SHIPYARD_MODEL_SEQUENCES=1 SHIPYARD_MODEL_TRACE=1"
        )
        assert not cov.violations, "\n".join([*cov.violations[:20], replay])
    report = (
        f"{SEQUENCES} sequences x {STEPS} steps = {total} steps, seed {SEED}, "
        f"{sum(cov.faults.values())} faults\n"
        f"phases {dict(cov.phases)}\nstep kinds {dict(cov.steps)}\n"
        f"actions tried {dict(cov.actions)}\nactions accepted {dict(cov.accepted)}\n"
        f"faults {dict(cov.faults)}\n"
    )
    record_property("model_report", report)
    Path("test-artifacts").mkdir(exist_ok=True)
    Path("test-artifacts/rollout-model.txt").write_text(report)
    assert set(cov.phases) == {p.value for p in Phase}, report
    assert {"set_weight", "pause", "analysis", "approval", "segment", "mirror"} <= set(cov.steps)
    assert set(cov.actions) == set(ACTIONS) and set(cov.faults) == set(FAULTS), report
    assert all(cov.accepted[a] > 0 for a in ACTIONS), report
