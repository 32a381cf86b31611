"""The rollout model's second, smaller run: the same random walks over real HAProxy and processes.

``tests/integration/model/test_rollout_model.py`` walks the engine with memory adapters and a
fixed clock; this walks it with the real ``local`` target (sample-service processes), the real
``haproxy`` router and real time, on SQLite, through the services as the server calls them.
Each sequence copies one built project (three candidates: a healthy v1 and v2, and a v3 that
fails half of its requests), deploys v1, then takes random steps: deploys (the canary, segment
and blue-green policies), aborts, rollbacks, promotes, pauses, resumes, HTTP traffic through
HAProxy, and faults: an instance killed -9 (its real pid), HAProxy killed -9 (its pid file), the
engine restarted (a new runtime and a new worker owner once the old one's lease expired). After
every step the engine ticks for about a second of real time and the invariants are checked:

- every active rollout has a next action: it is due again, or waits on a named human action;
- at most one deployment runs and one rollout steers traffic in the environment;
- what HAProxy really serves (requests through its port, the candidate each answer names) is
  what the rollout wants, or what succeeded last when no rollout steers;
- status's reading counts the instances of each candidate that really run (/proc).

At the end of each sequence the faults heal by themselves (instance and router supervision:
part of what is tested), humans finish what waits (promote --full, else abort), and every
rollout ends. Replay one sequence: SHIPYARD_MODEL_REAL_FIRST=n SHIPYARD_MODEL_REAL_SEQUENCES=1
SHIPYARD_MODEL_REAL_TRACE=1. A report goes to test-artifacts/rollout-model-real.txt.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipyard.adapters.routers.haproxy.process import port_open
from shipyard.adapters.targets.local import _alive, _identity
from shipyard.bootstrap import Runtime, bootstrap
from shipyard.cli.demo.processes import leftovers, sweep
from shipyard.domain import rollouts as ro
from shipyard.domain.auth import Actor, Role
from shipyard.domain.deployments import Deployment, DeploymentState
from shipyard.domain.rollouts import Rollout
from shipyard.engine.worker import Worker
from shipyard.errors import ShipyardError
from shipyard.services import deployments, projects, releases, rollouts
from tests.support import loadgen, sample_service, walk
from tests.support.server import free_port, sample_repo, sample_yaml, stop_environments

pytestmark = pytest.mark.slow

SEQUENCES = int(os.environ.get("SHIPYARD_MODEL_REAL_SEQUENCES", "3"))
STEPS = int(os.environ.get("SHIPYARD_MODEL_REAL_STEPS", "14"))
SEED = int(os.environ.get("SHIPYARD_MODEL_REAL_SEED", "20261204"))
FIRST = int(os.environ.get("SHIPYARD_MODEL_REAL_FIRST", "0"))
TRACE = bool(os.environ.get("SHIPYARD_MODEL_REAL_TRACE"))

ADA = Actor("ada", Role.DEPLOYER)
BOB = Actor("bob", Role.APPROVER)
ROOT = Actor("root", Role.ADMIN)
ENV = "production"
PORT = free_port()
LEASE_S = 2.0
TICK_S = 1.0  # real time the engine gets after each step
PROBES = 16  # requests through HAProxy per check

CONFIG = sample_yaml(f"""\
environments:
  - name: {ENV}
    target: {{kind: local, start: "{sample_service.START}", health_timeout: 15}}
    router: {{port: {PORT}}}
    policy: canary
policies:
  canary:
    steps:
      - set_weight: 30
      - analysis: {{checks: [errors], interval: 1s, duration: 3s}}
      - set_weight: 60
      - pause: 2s
  segmented:
    steps:
      - segment: {{match: {{header: {{name: x-beta, value: "1"}}}}}}
      - set_weight: 40
      - analysis: {{checks: [errors], interval: 1s, duration: 2s}}
  bluegreen:
    strategy: blue_green
    keep_old_for: 2s
checks:
  errors: {{metric: error_ratio, judge: threshold, threshold: {{max: 0.1}}, failure_limit: 1}}
""")
POLICIES = (None, "segmented", "bluegreen")  # None: the environment's canary


@dataclass(frozen=True)
class Built:
    root: Path  # holds data/ to copy per sequence
    candidates: tuple[str, ...]  # v1, v2 (healthy), v3 (fails half of its answers)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("model-real")
    repo = sample_repo(root / "shop", CONFIG, "v1")
    rt = bootstrap(root / "data")
    try:
        projects.add_project(rt.services, ROOT, str(repo.path))
        _, rc1 = releases.cut_release(rt.services, ADA, "shop")
        names = [rc1.name]
        for v, knobs in (("v2", {}), ("v3", {"error_rate": 0.5})):
            sha = repo.commit(
                f"fix: {v} (#{v[1]})", {"sample.json": sample_service.sample_config(v, **knobs)}
            )
            names.append(releases.pick(rt.services, ADA, "shop", "1.0.0", [sha]).name)
        rt.worker().drain()
    finally:
        rt.close()
    return Built(root, tuple(names))


@dataclass
class Coverage(walk.Coverage):
    served: Counter[str] = field(default_factory=Counter)  # probes' answers per candidate
    statuses: Counter[str] = field(default_factory=Counter)  # traffic steps' HTTP statuses


@dataclass
class World:
    data: Path
    rt: Runtime
    worker: Worker
    built: Built
    rng: random.Random
    cov: Coverage
    restarts: int = 0

    @property
    def svc(self):  # type: ignore[no-untyped-def]
        return self.rt.services

    @property
    def env_dir(self) -> Path:
        return self.data / "environments" / "shop" / ENV

    def latest(self) -> Rollout | None:
        with self.svc.uow() as uow:
            project = uow.projects.get("shop")
            assert project is not None
            found: Rollout | None = uow.rollouts.latest(project, ENV)
            return found

    def history(self) -> list[Deployment]:
        with self.svc.uow() as uow:
            project = uow.projects.get("shop")
            assert project is not None
            return list(uow.deployments.history(project))

    def tick(self, seconds: float = TICK_S) -> None:
        """Let the engine run for ``seconds`` of real time (deploy jobs run to their end)."""
        until = time.monotonic() + seconds
        while True:
            self.worker.drain(timeout=30)
            if time.monotonic() >= until:
                return
            time.sleep(0.1)


def _worker(rt: Runtime, n: int) -> Worker:
    return Worker(rt.services, owner=f"engine-{n}", lease_s=LEASE_S)


@contextmanager
def world(built: Built, where: Path, seed: int, cov: Coverage) -> Iterator[World]:
    """A fresh copy of the built project; afterwards HAProxy and every instance are stopped."""
    data = where / "data"
    shutil.copytree(built.root / "data", data)
    rt = bootstrap(data)
    w = World(data, rt, _worker(rt, 0), built, random.Random(seed), cov)
    try:
        yield w
    finally:
        w.rt.close()
        stop_environments(data, "shop", {ENV: PORT})
        left = sweep(where)  # what stop_environments missed: reported, never left running
        if left:
            cov.violations.append(f"seed {seed}: processes left running: {left}")


# --- actions and faults ---------------------------------------------------------------------------


def _active(w: World) -> Rollout | None:
    r = w.latest()
    return r if r is not None and r.active else None


def deploy(w: World) -> None:
    candidate = w.rng.choice(w.built.candidates[1:] * 2 + w.built.candidates[:1])
    policy = w.rng.choice(POLICIES)
    deployments.deploy(w.svc, ADA, "shop", candidate, ENV, policy=policy)


def rollback(w: World) -> None:
    deployments.rollback(w.svc, ADA, "shop", ENV, reason="model")


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


def traffic(w: World) -> None:
    """Bounded real requests through HAProxy (what analysis measures)."""
    result = loadgen.run(f"http://127.0.0.1:{PORT}/", requests=60, concurrency=3, seconds=3)
    w.cov.statuses.update({str(status): n for status, n in result.statuses.items()})


def _instances(w: World) -> list[tuple[int, str]]:
    """(pid, candidate) of every live instance the local target's state file records."""
    try:
        state = json.loads((w.env_dir / "instances.json").read_text())
    except (OSError, ValueError):
        return []
    return [
        (int(i["pid"]), str(i["candidate"])) for i in state["instances"] if _alive(int(i["pid"]))
    ]


def kill_instance(w: World) -> None:
    live = _instances(w)
    if live:
        pid, _ = w.rng.choice(live)
        os.kill(pid, signal.SIGKILL)


def kill_haproxy(w: World) -> None:
    with suppress(OSError, ValueError):
        os.kill(int((w.env_dir / "router" / "haproxy.pid").read_text().split()[0]), signal.SIGKILL)


def engine_restart(w: World) -> None:
    """The engine dies holding a rollout's lease; a new one (new runtime, new owner) takes over
    once the lease expired, and adopts the instances the dead one started."""
    r = _active(w)
    if r is not None:
        rollouts.claim(w.svc, w.worker.owner, LEASE_S, r.id)
    w.rt.close()
    w.restarts += 1
    w.rt = bootstrap(w.data)
    w.worker = _worker(w.rt, w.restarts)
    deployments.resume_supervision(w.svc)
    time.sleep(LEASE_S + 0.2)


ACTIONS: dict[str, tuple[int, Callable[[World], None]]] = {
    "deploy": (8, deploy),
    "rollback": (2, rollback),
    "abort": (3, abort),
    "promote": (4, promote),
    "promote_full": (2, promote_full),
    "pause": (2, pause),
    "resume": (3, resume),
    "traffic": (6, traffic),
}
FAULTS: dict[str, tuple[int, Callable[[World], None]]] = {
    "kill_instance": (4, kill_instance),
    "kill_haproxy": (3, kill_haproxy),
    "engine_restart": (2, engine_restart),
}


def describe(w: World) -> str:
    r = w.latest()
    rollout = r and (r.id, r.canary, r.stable, r.phase.value, r.step, r.weight, r.last_error[:60])
    deps = [(d.id, d.candidate, d.state.value) for d in w.history()[:3]]
    return f"rollout {rollout} | live {sorted(_instances(w))} | deps {deps}"


def step(w: World) -> str:
    name, outcome = walk.take_step(w, w.rng, w.cov, ACTIONS, FAULTS)
    w.tick()
    if TRACE:
        print(f"{name}: {outcome[:90]} | {describe(w)}")
    return name


# --- invariants -----------------------------------------------------------------------------------


def served(cov: Coverage | None = None) -> Counter[str] | None:
    """Which candidate answers ``/`` through HAProxy, per answer; None when HAProxy is down.
    Answers without a candidate (HAProxy's own 503 while an instance restarts) are left out."""
    if not port_open(PORT):
        return None
    seen: Counter[str] = Counter()
    for _ in range(PROBES):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=3) as resp:
                seen[json.loads(resp.read())["candidate"]] += 1
        except urllib.error.HTTPError as exc:
            with suppress(ValueError, KeyError):
                seen[json.loads(exc.read())["candidate"]] += 1
        except OSError:
            return None  # died meanwhile
    if cov is not None:
        cov.served.update(seen)
    return seen


def check(w: World, where: str, healed: bool = False) -> None:
    """Record every invariant that does not hold now (see the module docstring)."""
    bad = w.cov.violations
    history = w.history()
    if sum(d.state is DeploymentState.RUNNING for d in history) > 1:
        bad.append(f"{where}: more than one deployment runs in {ENV}")
    with w.svc.uow() as uow:
        active = [uow.rollouts.get(i) for i in uow.rollouts.active_ids()]
    steering = [r for r in active if r.phase in ro.ACTIVE_PHASES]
    if len(steering) > 1:
        bad.append(f"{where}: {len(steering)} rollouts steer traffic in {ENV}")
    for r in active:
        w.cov.phases[r.phase.value] += 1
        if r.due_at is None and not walk.waits_on_human(r):
            bad.append(f"{where}: rollout {r.id} is {r.phase.value} with no next action")
    latest = w.latest()
    if latest is not None:
        w.cov.phases[latest.phase.value] += 1
    _haproxy_serves_the_rollout(w, history, steering[0] if steering else None, where, healed)
    _status_counts_what_runs(w, where)


def _haproxy_serves_the_rollout(
    w: World, history: list[Deployment], active: Rollout | None, where: str, healed: bool
) -> None:
    """Only what the rollout allows answers; once faults healed, something answers."""
    if active is not None and active.last_error:
        return  # a tick failed (the router was down): the rollout says why and retries
    allowed: set[str | None]
    if active is not None:
        want = ro.route_of(active)
        if want.weight >= 100 and want.canary:
            allowed = {want.canary}
        elif want.weight > 0 and want.canary:
            allowed = {want.stable, want.canary}
        else:
            allowed = {want.stable}
    else:
        current = next((d for d in history if d.state is DeploymentState.SUCCEEDED), None)
        if current is None or history[0] is not current:
            return  # the newest deployment failed or waits: nothing promised to route
        allowed = {current.candidate}
    got = served(w.cov)
    if healed and not got:
        w.cov.violations.append(f"{where}: nothing answers through HAProxy, expected {allowed}")
    if got is None:
        return  # HAProxy is down (a fault); supervision brings it back, checked at the end
    if set(got) - allowed:
        says = sorted(map(str, allowed))
        w.cov.violations.append(f"{where}: HAProxy serves {dict(got)}, the rollout says {says}")


def _really_running(w: World) -> Counter[str]:
    """Instances per candidate as /proc tells it: live pids the target recorded, named by the
    SHIPYARD_CANDIDATE they were started with."""
    return Counter(_identity(pid) or name for pid, name in _instances(w))


def _status_counts_what_runs(w: World, where: str) -> None:
    said = ""
    for _ in range(3):  # the target's supervisor may restart an instance meanwhile: look again
        before = _really_running(w)
        _, rows = deployments.status(w.svc, ROOT, "shop")
        after = _really_running(w)
        [row] = [x for x in rows if x.environment == ENV]
        reading = row.reading
        assert reading is not None
        name = reading.candidate or ""
        shown = Counter({name: reading.running} if reading.running else {})
        shown.update(dict.fromkeys(reading.others, 1))
        real = Counter(dict.fromkeys((c for c in after if c != name), 1))
        if after[name]:
            real[name] = after[name]
        if before == after and shown == real:
            return
        said = f"{name} x{reading.running} (others {list(reading.others)})"
        time.sleep(0.3)
    w.cov.violations.append(f"{where}: status reads {said}, running: {dict(after)}")


# --- the end of a sequence ------------------------------------------------------------------------


def heal(w: World, where: str) -> None:
    """Faults heal by supervision alone; then people finish what waits, and everything ends."""
    deadline = time.monotonic() + 15
    while served() is None or not _instances(w):  # HAProxy and an instance back, by themselves
        if time.monotonic() > deadline:
            w.cov.violations.append(f"{where}: HAProxy or the instances never came back")
            return
        w.tick(0.5)
    deadline = time.monotonic() + 25
    with loadgen.Load(f"http://127.0.0.1:{PORT}/", seconds=25, concurrency=2):
        while (r := _active(w)) is not None and time.monotonic() < deadline:
            if walk.waits_on_human(r):
                try:
                    rollouts.promote(w.svc, BOB, "shop", ENV, full=True)
                except ShipyardError as exc:
                    if TRACE:
                        print(f"end: promote refused: {exc.message} | {describe(w)}")
                    rollouts.abort(w.svc, BOB, "shop", ENV, reason="model: end")
            w.tick(0.5)
    r = _active(w)
    if r is not None:
        w.cov.violations.append(
            f"{where}: rollout {r.id} still {r.phase.value} after healing: {r.last_error}"
        )
    w.tick(0.5)
    check(w, f"{where} healed", healed=True)


def test_rollouts_end_and_haproxy_serves_what_status_says_under_real_faults(
    built: Built, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    cov = Coverage()
    total = 0
    started = time.monotonic()
    for n in range(FIRST, FIRST + SEQUENCES):
        seed = SEED * 1000 + n
        with world(built, tmp_path / f"s{n}", seed, cov) as w:
            deployments.deploy(w.svc, ADA, "shop", built.candidates[0], ENV)
            w.tick()
            check(w, f"seed {seed} first deploy")
            for k in range(STEPS):
                name = step(w)
                total += 1
                check(w, f"seed {seed} step {k} ({name})")
            heal(w, f"seed {seed} end")
        replay = (
            f"replay: SHIPYARD_MODEL_REAL_FIRST={n} SHIPYARD_MODEL_REAL_SEQUENCES=1 "
            "SHIPYARD_MODEL_REAL_TRACE=1"
        )
        assert not cov.violations, "\n".join([*cov.violations[:20], replay])
    assert not leftovers(tmp_path), leftovers(tmp_path)
    seconds = time.monotonic() - started
    report = (
        f"{SEQUENCES} sequences x {STEPS} steps = {total} steps, seed {SEED}, "
        f"{sum(cov.faults.values())} faults, {seconds:.0f}s\n"
        f"phases {dict(cov.phases)}\n"
        f"actions tried {dict(cov.actions)}\nactions accepted {dict(cov.accepted)}\n"
        f"faults {dict(cov.faults)}\nprobes through HAProxy {dict(cov.served)}\n"
        f"traffic statuses {dict(cov.statuses)}\n"
    )
    record_property("model_real_report", report)
    print(report)
    Path("test-artifacts").mkdir(exist_ok=True)
    Path("test-artifacts/rollout-model-real.txt").write_text(report)
    assert set(cov.faults) == set(FAULTS) and cov.accepted["deploy"] > 0, report
