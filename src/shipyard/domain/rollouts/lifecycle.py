"""The rollout's life: start, decide (observe → decide, as far as it can go), the route wanted.

``decide`` returns the next rollout, its records and the effects that make the router match it;
``ending_effects`` says what a deciding (promoting/aborting) rollout needs done, and
``outcomes.finish`` records how that went.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shipyard.domain.rollouts.analysis import measurement_due
from shipyard.domain.rollouts.handlers import run_steps
from shipyard.domain.rollouts.kinds import Phase, RecordKind
from shipyard.domain.rollouts.model import (
    ENGINE,
    ApplyRoute,
    Decision,
    Drain,
    Effect,
    Observation,
    Record,
    Retire,
    Rollout,
    RouteIntent,
    Wants,
)
from shipyard.domain.rollouts.steps import Analysis


def route_of(r: Rollout) -> RouteIntent:
    """The traffic split the rollout wants live now."""
    if r.phase in (Phase.PROMOTING, Phase.PROMOTED):
        return RouteIntent(stable=r.canary)
    if r.phase in (Phase.ABORTING, Phase.ROLLED_BACK):
        return RouteIntent(stable=r.stable)
    return RouteIntent(r.stable, r.canary, r.weight, r.segment, r.mirror)


def proxy_route(r: Rollout) -> RouteIntent:
    """What the environment's proxy carries: a flag-routed rollout keeps it on the new version
    (the flag is the route)."""
    return RouteIntent(stable=r.canary) if r.policy.flag_routed else route_of(r)


def flag_percent(r: Rollout) -> float:
    """The share of users a flag-routed rollout wants in the flag's on cohort now.

    Promoting means everyone; aborting is the kill path (0%, the feature dark again)."""
    if r.phase in (Phase.PROMOTING, Phase.PROMOTED):
        return 100.0
    if r.phase in (Phase.ABORTING, Phase.ROLLED_BACK):
        return 0.0
    return r.weight


def start(r: Rollout, now: datetime) -> Decision:
    """A new rollout: a first deployment has nothing to compare with and goes straight to 100%.

    A flag-routed rollout always has something to compare with: the users the flag is off for.
    """
    first = r.stable is None or r.stable == r.canary
    if first and not r.policy.flag_routed:
        nxt = replace(r, phase=Phase.PROMOTING, weight=100.0, due_at=now, reason="first version")
        rec = Record(
            RecordKind.PROMOTING, 0, ENGINE, "nothing serves yet: the new version takes 100%"
        )
        return Decision(nxt, (rec,))
    nxt = replace(r, step_started_at=now, due_at=now)
    message = f"policy {r.policy.name} ({r.policy.strategy}, {len(r.policy.steps)} steps)"
    if r.policy.flag_routed:
        message += f", moving flag {r.policy.flag}"
    return Decision(nxt, (Record(RecordKind.STARTED, 0, ENGINE, f"rollout started: {message}"),))


def wants(r: Rollout, now: datetime) -> Wants:
    """What to measure before ``decide``: nothing unless an analysis measurement is due."""
    step = r.current_step
    if not measurement_due(r, now) or not isinstance(step, Analysis):
        return Wants()
    return Wants(
        counters=any(c.provider == "router" for c in step.checks),
        queries=tuple(c for c in step.checks if c.provider == "prometheus"),
        interval_s=step.interval,
    )


def decide(r: Rollout, now: datetime, obs: Observation | None = None) -> Decision:
    """Run the policy as far as it can go at ``now``; ``obs`` answers ``wants``.

    A tick that got this far worked: an error streak of the tick ends here."""
    if r.phase is not Phase.PROGRESSING:
        return Decision(r)
    records: tuple[Record, ...] = ()
    if r.errors is not None:
        s = r.errors
        msg = f"recovered after {s.count} error(s): {s.message}"
        ev = s.evidence(r.policy.consecutive_error_limit)
        records = (Record(RecordKind.RECOVERED, r.step, ENGINE, msg, ev),)
        r = replace(r, errors=None, last_error="")
    d = run_steps(r, now, obs, records)
    effects: tuple[Effect, ...] = ()
    if proxy_route(d.rollout) != proxy_route(r):
        effects = (ApplyRoute(proxy_route(d.rollout)),)
    return Decision(d.rollout, d.records, effects)


def ending_effects(r: Rollout) -> tuple[Effect, ...]:
    """What must be done, in order, before a deciding rollout is over. The executor stops at
    the first that fails: a version still taking traffic is never stopped."""
    route = ApplyRoute(proxy_route(r))
    if r.policy.flag_routed:  # one version runs; the flag was the route
        return (route,)
    if r.phase is Phase.PROMOTING:
        if r.stable and r.stable != r.canary and r.policy.keep_old_for_s <= 0:
            return (route, Drain(), Retire(r.stable))
        return (route,)
    if r.phase is Phase.ABORTING:
        return (route, Drain(), Retire(r.canary))
    if r.phase is Phase.PROMOTED and not r.old_retired and r.stable and r.stable != r.canary:
        return (Retire(r.stable),)
    return ()
