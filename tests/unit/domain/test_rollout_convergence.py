"""A seeded random walk over the pure rollout core: every rollout always has a next action.

Random policies meet random sequences of observations (pass, fail, inconclusive, no data,
measurement errors), faults of the engine's own work (router, target, instance, other), human
commands and time jumps. A small engine model does what ``services.rollouts.tick`` does: route,
measure, decide, carry out the effects (which may fail), finish. After every step the rollout is
terminal, or due at a time, or paused naming the human action it waits for; and once the faults
stop, a human who promotes or resumes drives every rollout to an end. The coverage of phases,
step kinds, commands and faults is collected and asserted.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from shipyard.analysis.checks import CheckSpec, QueryResult
from shipyard.analysis.slices import ArmCounters
from shipyard.domain import rollouts as ro
from shipyard.domain.auth import Role
from shipyard.domain.rollouts import (
    Analysis,
    Approval,
    EffectFailure,
    FaultKind,
    Mirror,
    Observation,
    OnError,
    Pause,
    Phase,
    PolicySpec,
    Rollout,
    Segment,
    SegmentRule,
    SetWeight,
    Step,
    StepKind,
)
from shipyard.errors import ShipyardError

SEQUENCES = 240
STEPS = 40
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
STABLE, CANARY = "1.0.0-rc.1", "1.0.0-rc.2"
ROUTER_CHECK = CheckSpec(
    "errors", "router", metric="error_ratio", judge="threshold", max=0.05, interval_s=10.0
)
QUERY_CHECK = CheckSpec(
    "checkout", "prometheus", query="q", judge="threshold", max=1.0, interval_s=10.0
)
USERS = {"ada": [Role.DEPLOYER], "bob": [Role.APPROVER], "cy": [Role.ADMIN]}
OBSERVATIONS = ("pass", "fail", "inconclusive", "no_data", "error")
COMMANDS = ("promote", "promote_full", "pause", "resume", "abort", "approve")
TERMINAL = "terminal"


def _policy(rng: random.Random) -> PolicySpec:
    steps: list[Step] = []
    weight = 0.0
    for _ in range(rng.randint(0, 6)):
        kind = rng.choice(list(StepKind))
        if kind is StepKind.SET_WEIGHT:
            weight = min(100.0, weight + rng.choice([1.0, 10.0, 25.0]))
            steps.append(SetWeight(weight))
        elif kind is StepKind.PAUSE:
            steps.append(Pause(rng.choice([None, 0.0, 15.0, 60.0])))
        elif kind is StepKind.ANALYSIS:
            checks = rng.choice([(ROUTER_CHECK,), (QUERY_CHECK,), (ROUTER_CHECK, QUERY_CHECK)])
            steps.append(Analysis(checks, rng.choice([None, 20.0, 60.0]), 10.0))
        elif kind is StepKind.APPROVAL:
            steps.append(Approval(rng.randint(1, 2)))
        elif kind is StepKind.SEGMENT:
            steps.append(Segment(SegmentRule("header", "x-beta", "1")))
        else:
            steps.append(Mirror(rng.choice([5.0, 20.0])))
    limit = rng.choice([1, 2, 4, 4])
    on_error = rng.choice(list(OnError))
    if rng.random() < 0.25:
        return PolicySpec.blue_green(
            "bg",
            [s for s in steps if isinstance(s, Pause | Analysis | Approval)],
            rng.choice([[], [ROUTER_CHECK]]),
            keep_old_for_s=rng.choice([0.0, 60.0]),
            auto_switch=rng.random() < 0.5,
            consecutive_error_limit=limit,
            on_error=on_error,
        )
    return PolicySpec("p", steps=tuple(steps), consecutive_error_limit=limit, on_error=on_error)


@dataclass
class World:
    """What the fakes would report: cumulative counters, and which faults are live now."""

    rng: random.Random
    canary: ArmCounters = field(default_factory=lambda: ArmCounters(0.0))
    baseline: ArmCounters = field(default_factory=lambda: ArmCounters(0.0))
    faults: bool = True
    seen: Counter[str] = field(default_factory=Counter)

    def observe(self, wants: ro.Wants, step: Step | None) -> Observation:
        kind = self.rng.choice(OBSERVATIONS) if self.faults else "pass"
        self.seen[f"observation:{kind}"] += 1
        checks = step.checks if isinstance(step, Analysis) else ()
        if kind == "error":
            self.seen["fault:metric"] += 1
            return Observation(
                errors={c.name: (FaultKind.METRIC, "query timed out") for c in checks}
            )
        requests = {"inconclusive": 3.0, "no_data": 0.0}.get(kind, 500.0)
        errors = requests * (0.3 if kind == "fail" else 0.001)
        c, b = self.canary, self.baseline
        self.canary = ArmCounters(c.requests + requests, c.errors + errors)
        self.baseline = ArmCounters(b.requests + 500.0, b.errors + 0.5)
        value = {"fail": 9.0, "no_data": None}.get(kind, 0.1)
        queries = {
            q.name: QueryResult(0.0, value, query="q", reason="no data" if value is None else "")
            for q in wants.queries
        }
        return Observation(self.canary if wants.counters else None, self.baseline, queries)

    def fails(self, what: str) -> FaultKind | None:
        if not self.faults or self.rng.random() > 0.1:
            return None
        kind = self.rng.choice([FaultKind.ROUTER, FaultKind.TARGET, FaultKind.INSTANCE])
        self.seen[f"fault:{kind.value}"] += 1
        self.seen[f"fault_at:{what}"] += 1
        return kind


def engine_tick(r: Rollout, now: datetime, world: World) -> Rollout:
    """``services.rollouts.tick`` over the pure core, with the executor's failures drawn."""
    if world.faults and world.rng.random() < 0.02:  # the environment's config cannot be read
        world.seen["fault:other"] += 1
        return ro.fault(r, FaultKind.OTHER, "config unreadable", now).rollout
    if r.phase in (Phase.PROGRESSING, Phase.PAUSED):
        kind = world.fails("sync")
        if kind is not None:
            return ro.fault(r, kind, f"{kind.value} broken", now).rollout
    if r.phase is Phase.PAUSED and r.due_at is not None:
        r = replace(r, due_at=None, errors=None, last_error="")
    if r.phase is Phase.PROGRESSING:
        wants = ro.wants(r, now)
        obs = world.observe(wants, r.current_step) if wants.counters or wants.queries else None
        d = ro.decide(r, now, obs)
        r = d.rollout
        if d.effects:
            kind = world.fails("route")
            if kind is not None:
                return ro.fault(r, kind, f"{kind.value} broken", now).rollout
    done_retiring = r.phase is Phase.PROMOTED and not r.old_retired
    if r.phase in ro.DECIDING or (done_retiring and r.due_at is not None and r.due_at <= now):
        effects = ro.ending_effects(r)
        failures: tuple[EffectFailure, ...] = ()
        for effect in effects:
            kind = world.fails("ending")
            if kind is not None:
                failures = (EffectFailure(effect, f"{kind.value} broken", kind),)
                break
        r = ro.finish(r, now, failures).rollout
    return r


def command(r: Rollout, name: str, rng: random.Random, now: datetime) -> ro.Decision:
    user = rng.choice(sorted(USERS))
    roles = [x.value for x in USERS[user]]
    if name == "promote":
        return ro.promote(r, user=user, roles=roles, now=now)
    if name == "promote_full":
        return ro.promote(r, user="cy", roles=[Role.ADMIN.value], now=now, full=True)
    if name == "approve":
        return ro.promote(r, user=rng.choice(["bob", "cy"]), roles=[Role.APPROVER.value], now=now)
    if name == "pause":
        return ro.pause(r, user=user, now=now)
    if name == "resume":
        return ro.resume(r, user=user, now=now)
    return ro.abort(r, user=user, now=now)


def terminal(r: Rollout) -> bool:
    return r.phase is Phase.ROLLED_BACK or (r.phase is Phase.PROMOTED and r.old_retired)


def check_next_action(r: Rollout) -> str:
    """The invariant: terminal, due, or waiting on a named human action."""
    if terminal(r):
        assert not r.active
        return TERMINAL
    if r.due_at is not None:
        return "due"
    if r.phase in (Phase.ABORTING, Phase.ROLLED_BACK):
        assert ro.route_of(r).canary is None  # after an abort the canary takes no traffic
    assert r.phase is Phase.PAUSED, r
    assert r.paused_for is not ro.PauseReason.NONE and r.awaiting and r.pause_reason, r
    return "human"


def walk(seed: int, seen: Counter[str]) -> Rollout:
    rng = random.Random(seed)
    pol = _policy(rng)
    first = rng.random() < 0.1
    r0 = Rollout(
        1, 1, "shop", "production", CANARY, None if first else STABLE, pol, "ada", T0, revision=1
    )
    r = ro.start(r0, T0).rollout
    world = World(rng, seen=seen)
    now = T0
    for _ in range(STEPS):
        if terminal(r):  # `rollout retry`: the same candidate again, from the first step
            r = ro.start(replace(r0, id=r.id + 1, created_at=now), now).rollout
            seen["action:retry"] += 1
        roll = rng.random()
        if roll < 0.45:
            now = max(now, r.due_at or now) if rng.random() < 0.7 else now
            r = engine_tick(r, now, world)
            seen["action:tick"] += 1
        elif roll < 0.6:
            now += timedelta(seconds=rng.choice([1, 10, 45, 600]))
            seen["action:time_jump"] += 1
        else:
            name = rng.choice(COMMANDS)
            try:
                r = command(r, name, rng, now).rollout
                seen[f"command:{name}"] += 1
            except ShipyardError:
                seen[f"refused:{name}"] += 1
        seen[f"phase:{r.phase.value}"] += 1
        if r.phase is Phase.PAUSED:
            seen[f"paused_for:{r.paused_for.value}"] += 1
        step = r.current_step
        if step is not None and r.phase in (Phase.PROGRESSING, Phase.PAUSED):
            seen[f"step:{step.kind.value}"] += 1
        if r.errors is not None:
            seen["error_streak"] += 1
        nxt = check_next_action(r)
        seen[f"next:{nxt}"] += 1
        if nxt == TERMINAL:
            seen[f"ended:{r.phase.value}"] += 1
            if r.not_done:
                seen[f"ended_incomplete:{r.phase.value}"] += 1
    # the faults stop; a human goes on wherever it waits: it ends
    world.faults = False
    for _ in range(200):
        if terminal(r):
            break
        if r.due_at is not None:
            now = max(now, r.due_at)
            r = engine_tick(r, now, world)
        else:
            fix = "resume" if ro.resumable(r) else "promote_full"
            r = command(r, fix, rng, now).rollout
        check_next_action(r)
    assert terminal(r), r
    seen[f"ended:{r.phase.value}"] += 1
    return r


def test_every_rollout_has_a_next_action_and_converges() -> None:
    seen: Counter[str] = Counter()
    for seed in range(SEQUENCES):
        walk(seed, seen)
    missing = [
        *(f"phase:{p.value}" for p in Phase),
        *(f"step:{k.value}" for k in StepKind),
        *(f"command:{c}" for c in COMMANDS),
        *(f"fault:{f.value}" for f in FaultKind),
        *(f"observation:{o}" for o in OBSERVATIONS),
        *(f"paused_for:{p.value}" for p in ro.PauseReason if p is not ro.PauseReason.NONE),
        "next:terminal",
        "next:due",
        "next:human",
        "ended:promoted",
        "ended:rolled_back",
        "ended_incomplete:rolled_back",
        "error_streak",
    ]
    missing = [k for k in missing if not seen[k]]
    report = ", ".join(f"{k}={n}" for k, n in sorted(seen.items()))
    print(f"random walk: {SEQUENCES} sequences x {STEPS} steps; {report}")
    assert not missing, f"not reached: {missing}"
