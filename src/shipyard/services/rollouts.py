"""Rollouts: a deployment's new version takes live traffic step by step, as its policy says.

The engine calls ``tick`` for a rollout it has leased. A tick reads the saved rollout, makes the
router match it (so a restart re-applies the weights the database holds), measures what the
current step needs, lets ``domain.rollouts.decide`` choose, saves the new state with its
decisions and events in one transaction (compare-and-set on the revision, so a human command
saved meanwhile wins), and then carries out the effects: the new route, and when the rollout is
decided, the final switch, the retirement of the loser and the deployment's outcome.

Humans act through ``promote``/``pause``/``resume``/``abort``: each is one transaction that saves
the decision and makes the rollout due at once; the engine applies the route within a poll.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shipyard.analysis.checks import QueryResult
from shipyard.analysis.slices import ArmCounters
from shipyard.domain import rollouts as ro
from shipyard.domain.auth import Action, Actor
from shipyard.domain.deployments import Deployment, DeploymentState
from shipyard.domain.releases import Candidate, Project
from shipyard.domain.rollouts import Decision, Observation, Phase, Rollout
from shipyard.errors import ErrorCode, NotFoundError, PermissionDenied, ShipyardError
from shipyard.ports.metrics import MetricQuery, NoData
from shipyard.ports.repositories import RolloutRecordEntry, UnitOfWork
from shipyard.ports.routers import Counters, RoutePlan
from shipyard.ports.targets import DeploySpec
from shipyard.services import cohorts
from shipyard.services.context import Services
from shipyard.services.deployments import complete_deployment, deploy_spec_for
from shipyard.services.project_config import EnvironmentSpec, prometheus_source
from shipyard.services.releases import get_project
from shipyard.services.traffic import (
    ENGINE_ACTOR,
    apply_route,
    drain,
    record,
    route_ref,
)

log = logging.getLogger("shipyard.rollouts")

_DOUBLE_BRACES = re.compile(r"\{\{\s*(\w+)\s*\}\}")


# --- the engine's step ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    project: Project
    deployment: Deployment
    candidate: Candidate
    spec: EnvironmentSpec
    deploy_spec: DeploySpec


def _context(svc: Services, uow: UnitOfWork, r: Rollout) -> _Context:
    d = uow.deployments.get(r.deployment_id)
    project = get_project(uow, r.project)
    env, deploy_spec, candidate = deploy_spec_for(svc, uow, d)
    return _Context(project, d, candidate, env, deploy_spec)


def _arm(c: Counters | None) -> ArmCounters | None:
    if c is None:
        return None
    return ArmCounters(float(c.requests), float(c.errors_5xx), dict(c.latency_buckets))


def _cohort_arms(svc: Services, r: Rollout) -> tuple[Counters, Counters]:
    """(canary, stable): what the app reported for the flag's on and off users."""
    assert r.policy.flag is not None
    with svc.uow() as uow:
        return cohorts.counters(uow, get_project(uow, r.project), r.environment, r.policy.flag)


def _observe(
    svc: Services, ctx: _Context, r: Rollout, wants: ro.Wants, now: datetime
) -> Observation:
    canary = baseline = None
    if wants.counters and r.policy.flag_routed:
        on, off = _cohort_arms(svc, r)
        canary, baseline = _arm(on), _arm(off)
    elif wants.counters:
        assert ctx.spec.router_kind is not None
        router = svc.routers(ctx.spec.router_kind)
        counts = router.counters(route_ref(svc, r.project, r.environment, ctx.spec))
        canary = _arm(counts.get(r.canary, Counters(0, 0)))
        baseline = _arm(counts.get(r.stable)) if r.stable else None
    queries: dict[str, QueryResult] = {}
    if wants.queries:
        provider = svc.metrics(prometheus_source(ctx.candidate.config_text))
        for check in wants.queries:
            assert check.query is not None
            expression = _DOUBLE_BRACES.sub(r"{\1}", check.query)
            variables = {
                "version": r.canary,
                "stable_version": r.stable or "",
                "project": r.project,
                "environment": r.environment,
                "interval": f"{max(1, round(wants.interval_s))}s",
            }
            got = provider.query(MetricQuery(expression, variables), now)
            base: float | None = None
            if check.compare_baseline and r.stable:
                other = provider.query(
                    MetricQuery(expression, {**variables, "version": r.stable}), now
                )
                base = None if isinstance(other, NoData) else other.value
            if isinstance(got, NoData):
                queries[check.name] = QueryResult(0.0, None, base, got.query, got.reason)
            else:
                queries[check.name] = QueryResult(0.0, got.value, base, got.query)
    return Observation(canary, baseline, queries)


def _save(svc: Services, r: Rollout, d: Decision, owner: str | None) -> Rollout | None:
    """Save a decision taken on revision ``r.revision``; None when the rollout moved meanwhile."""
    if not d.changed and d.rollout == r:
        return r
    with svc.uow() as uow:
        now = svc.clock.now()
        if owner is not None and not uow.rollouts.holds_lease(r.id, owner, now):
            return None
        saved = uow.rollouts.save(d.rollout, now)
        if saved is None:
            return None
        record(uow, saved, d.records, now)
        uow.commit()
        return saved


def tick(
    svc: Services, rollout_id: int, owner: str, applied: MutableMapping[int, RoutePlan]
) -> Rollout:
    """One reconcile step of a leased rollout (see the module docstring)."""
    with svc.uow() as uow:
        r = uow.rollouts.get(rollout_id)
        ctx = _context(svc, uow, r)
    canceled = ctx.deployment.state is not DeploymentState.RUNNING
    if canceled and r.phase in (Phase.PROGRESSING, Phase.PAUSED):  # canceled under us
        d = ro.abort(r, user=ENGINE_ACTOR, now=svc.clock.now(), reason="deployment canceled")
        r = _save(svc, r, d, owner) or r
    _sync_route(svc, ctx, r, applied)
    now = svc.clock.now()
    if r.phase is Phase.PAUSED and r.due_at is not None:  # the route is live; wait for a human
        r = _save(svc, r, Decision(replace(r, due_at=None)), owner) or r
    if r.phase is Phase.PROGRESSING:
        wants = ro.wants(r, now)
        obs = None
        if wants.counters or wants.queries:
            obs = _observe(svc, ctx, r, wants, now)
        decided = ro.decide(r, now, obs)
        saved = _save(svc, r, decided, owner)
        if saved is None:
            return r
        r = saved
        _sync_route(svc, ctx, r, applied)
    if r.phase in (Phase.PROMOTING, Phase.ABORTING) or (
        r.phase is Phase.PROMOTED and not r.old_retired and r.due_at is not None and r.due_at <= now
    ):
        r = _finish(svc, ctx, r, owner, applied)
    return r


def _sync_route(
    svc: Services, ctx: _Context, r: Rollout, applied: MutableMapping[int, RoutePlan]
) -> None:
    if r.policy.flag_routed:
        # the flag was saved with the decision; a proxy, if any, keeps 100% on the new version
        if ctx.spec.router_kind is not None:
            intent = ro.RouteIntent(stable=r.canary)
            applied[r.id] = apply_route(svc, ctx.spec, ctx.deploy_spec, intent, applied.get(r.id))
        return
    applied[r.id] = apply_route(svc, ctx.spec, ctx.deploy_spec, ro.route_of(r), applied.get(r.id))


def _finish(
    svc: Services,
    ctx: _Context,
    r: Rollout,
    owner: str | None,
    applied: MutableMapping[int, RoutePlan],
) -> Rollout:
    """The decided rollout's effects, then its outcome in one transaction with the deployment's."""
    target = svc.targets(ctx.spec.target_kind)
    if r.policy.flag_routed:
        pass  # one version runs (the old one stopped at deploy); the flag was the route
    elif r.phase is Phase.PROMOTING:
        if r.stable and r.stable != r.canary and r.policy.keep_old_for_s <= 0:
            drain(svc, ctx.spec)
            target.retire(ctx.deploy_spec, r.stable)
    elif r.phase is Phase.ABORTING:
        drain(svc, ctx.spec)
        target.retire(ctx.deploy_spec, r.canary)
    elif r.phase is Phase.PROMOTED and r.stable:
        target.retire(ctx.deploy_spec, r.stable)
    applied.pop(r.id, None)
    with svc.uow() as uow:
        now = svc.clock.now()
        if owner is not None and not uow.rollouts.holds_lease(r.id, owner, now):
            return r
        done = ro.finish(r, now)
        saved = uow.rollouts.save(done.rollout, now)
        if saved is None:
            return r
        record(uow, saved, done.records, now)
        if r.phase is Phase.PROMOTING:
            complete_deployment(
                svc, uow, r.deployment_id, failure=None, log=_summary(saved), now=now
            )
        elif r.phase is Phase.ABORTING:
            complete_deployment(
                svc,
                uow,
                r.deployment_id,
                failure=f"rolled back: {r.reason}",
                log=_summary(saved),
                now=now,
                code=ErrorCode.ROLLED_BACK.value,
            )
        uow.commit()
        return saved


def _summary(r: Rollout) -> str:
    return f"rollout {r.phase.value}: {r.reason}\n"


# --- human commands -----------------------------------------------------------------------------


def _current(uow: UnitOfWork, project: Project, environment: str) -> Rollout:
    r = uow.rollouts.latest(project, environment)
    if r is None or not r.active:
        raise NotFoundError(
            f"no rollout in progress in {project.name}/{environment}",
            hint=f"see `shipyard rollout status {project.name} {environment}`",
        )
    return r


def _may_steer(actor: Actor) -> None:
    """Deployers steer their rollouts; approvers too (they approve steps, and may stop one)."""
    try:
        actor.require(Action.DEPLOY)
    except PermissionDenied:
        actor.require(Action.APPROVE)


def may_steer(actor: Actor) -> bool:
    """Whether ``actor`` may promote, pause, resume or abort: faces offer the buttons by this."""
    try:
        _may_steer(actor)
    except PermissionDenied:
        return False
    return True


def _command(
    svc: Services, actor: Actor, project_name: str, environment: str, action: str, **kw: Any
) -> Rollout:
    _may_steer(actor)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        r = _current(uow, project, environment)
        now = svc.clock.now()
        if action == "promote":
            d = ro.promote(r, user=actor.user, roles=[actor.role.value], now=now, **kw)
        elif action == "pause":
            d = ro.pause(r, user=actor.user, now=now)
        elif action == "resume":
            d = ro.resume(r, user=actor.user, now=now)
        else:
            d = ro.abort(r, user=actor.user, now=now, **kw)
        # due at once, paused or not: the engine makes the route match what was decided
        nxt = replace(d.rollout, due_at=now if d.rollout.active else None)
        saved = uow.rollouts.save(nxt, now)
        if saved is None:
            raise ShipyardError("the rollout changed while this command was applied; try again")
        record(uow, saved, d.records, now)
        uow.commit()
        return saved


def promote(
    svc: Services, actor: Actor, project: str, environment: str, *, full: bool = False
) -> Rollout:
    return _command(svc, actor, project, environment, "promote", full=full)


def pause(svc: Services, actor: Actor, project: str, environment: str) -> Rollout:
    return _command(svc, actor, project, environment, "pause")


def resume(svc: Services, actor: Actor, project: str, environment: str) -> Rollout:
    return _command(svc, actor, project, environment, "resume")


def abort(
    svc: Services, actor: Actor, project: str, environment: str, *, reason: str = ""
) -> Rollout:
    return _command(svc, actor, project, environment, "abort", reason=reason)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutView:
    rollout: Rollout
    records: Sequence[RolloutRecordEntry]
    live: Mapping[str, Counters]  # per candidate, from the router now ({} when unreachable)
    url: str | None  # where users reach the environment


def status(
    svc: Services, actor: Actor, project_name: str, environment: str, *, records: int = 10
) -> RolloutView:
    actor.require(Action.READ)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        r = uow.rollouts.latest(project, environment)
        if r is None:
            raise NotFoundError(f"no rollout has run in {project_name}/{environment}")
        entries = uow.rollouts.records(r.id, limit=records)
        ctx = _context(svc, uow, r)
    live: Mapping[str, Counters] = {}
    url = None
    routed = ctx.spec.router_kind is not None and ctx.spec.router_port is not None
    if routed:
        url = f"http://127.0.0.1:{ctx.spec.router_port}/"
    if r.policy.flag_routed:
        on, off = _cohort_arms(svc, r)
        live = {cohort_label(r, True): on, cohort_label(r, False): off}
    elif routed:
        assert ctx.spec.router_kind is not None
        try:
            router = svc.routers(ctx.spec.router_kind)
            live = router.counters(route_ref(svc, r.project, r.environment, ctx.spec))
        except ShipyardError:
            live = {}
    return RolloutView(r, entries, live, url)


def cohort_label(r: Rollout, on: bool) -> str:
    """How a flag-routed rollout names its arms in ``RolloutView.live``."""
    return f"flag {r.policy.flag} {'on' if on else 'off'}"


def explain(svc: Services, actor: Actor, project_name: str, deployment_id: int) -> RolloutView:
    actor.require(Action.READ)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        d = uow.deployments.get(deployment_id)
        if d.project != project.name:
            raise NotFoundError(f"deployment {deployment_id} is not in project {project_name}")
        r = uow.rollouts.for_deployment(deployment_id)
        if r is None:
            raise NotFoundError(
                f"deployment {deployment_id} had no rollout (its environment has no policy, "
                "or it was a rollback)"
            )
        return RolloutView(r, uow.rollouts.records(r.id), {}, None)


def claim(svc: Services, owner: str, lease_s: float, rollout_id: int | None = None) -> int | None:
    with svc.uow() as uow:
        got = uow.rollouts.claim(
            owner=owner, now=svc.clock.now(), lease_s=lease_s, rollout_id=rollout_id
        )
        uow.commit()
        return got


def resync(
    svc: Services, owner: str, lease_s: float, applied: MutableMapping[int, RoutePlan]
) -> int:
    """Make every active rollout's route live again (after a restart, or a proxy that died),
    including paused ones that are not due; returns how many were re-applied."""
    with svc.uow() as uow:
        ids = list(uow.rollouts.active_ids())
    done = 0
    for rollout_id in ids:
        if claim(svc, owner, lease_s, rollout_id) is None:
            continue  # another worker holds it: it keeps the route right
        try:
            with svc.uow() as uow:
                r = uow.rollouts.get(rollout_id)
                ctx = _context(svc, uow, r)
            applied.pop(rollout_id, None)
            _sync_route(svc, ctx, r, applied)
            done += 1
        except ShipyardError as exc:
            log.warning("rollout %s: could not re-apply its route: %s", rollout_id, exc)
        finally:
            release(svc, rollout_id, owner)
    return done


def defer(svc: Services, rollout_id: int, owner: str, seconds: float, error: str) -> None:
    """A tick failed: look again later, and say why in the rollout's state."""
    with svc.uow() as uow:
        uow.rollouts.defer(rollout_id, owner, svc.clock.now() + timedelta(seconds=seconds), error)
        uow.commit()


def release(svc: Services, rollout_id: int, owner: str) -> None:
    with svc.uow() as uow:
        uow.rollouts.release(rollout_id, owner)
        uow.commit()


__all__ = [
    "RolloutView",
    "abort",
    "claim",
    "cohort_label",
    "explain",
    "may_steer",
    "pause",
    "promote",
    "release",
    "resume",
    "status",
    "tick",
]
