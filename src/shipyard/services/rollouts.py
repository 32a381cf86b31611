"""Rollouts: a deployment's new version takes live traffic step by step, as its policy says.

The engine calls ``tick`` for a rollout it has leased. A tick reads the saved rollout, makes the
router match it (so a restart re-applies the weights the database holds), measures what the
current step needs, lets ``domain.rollouts.decide`` choose, saves the new state with its
decisions and events in one transaction (compare-and-set on the revision, so a human command
saved meanwhile wins), and then ``execute`` carries out the decision's effects: the new route,
and when the rollout is decided, the final switch, the retirement of the loser, then the
deployment's outcome. ``execute`` is the one executor of effects.

Nothing that fails in a tick is retried blindly: a measurement that fails is an error of its
check (in the observation), an effect that fails or a tick that cannot start is handed to
``domain.rollouts.finish`` / ``fault``, which record it as an error streak with a bounded
backoff and, at the policy's ``consecutive_error_limit``, abort, pause or end the rollout.

Humans act through ``promote``/``pause``/``resume``/``abort``: each is one transaction that saves
the decision and makes the rollout due at once; the engine applies the route within a poll.
``retry`` runs a rolled-back rollout again as a new deployment.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shipyard.analysis.checks import CheckSpec, QueryResult
from shipyard.analysis.slices import ArmCounters
from shipyard.domain import rollouts as ro
from shipyard.domain.auth import Action, Actor
from shipyard.domain.deployments import Deployment, DeploymentState
from shipyard.domain.releases import Candidate, Project
from shipyard.domain.rollouts import Decision, Observation, Phase, Rollout
from shipyard.errors import (
    ConflictError,
    ErrorCode,
    NoInstanceError,
    NotFoundError,
    PermissionDenied,
    ShipyardError,
)
from shipyard.ports.metrics import MetricProvider, MetricQuery, NoData
from shipyard.ports.repositories import RolloutRecordEntry, UnitOfWork
from shipyard.ports.routers import Counters, RoutePlan
from shipyard.ports.targets import DeploySpec
from shipyard.services import cohorts
from shipyard.services.context import Services
from shipyard.services.deployments import complete_deployment, deploy, deploy_spec_for
from shipyard.services.project_config import EnvironmentSpec, prometheus_source
from shipyard.services.releases import get_project
from shipyard.services.traffic import (
    ENGINE_ACTOR,
    apply_route,
    drain,
    observe_route,
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


def _query_check(
    provider: MetricProvider, check: CheckSpec, r: Rollout, interval_s: float, now: datetime
) -> QueryResult:
    assert check.query is not None
    expression = _DOUBLE_BRACES.sub(r"{\1}", check.query)
    variables = {
        "version": r.canary,
        "stable_version": r.stable or "",
        "project": r.project,
        "environment": r.environment,
        "interval": f"{max(1, round(interval_s))}s",
    }
    got = provider.query(MetricQuery(expression, variables), now)
    base: float | None = None
    if check.compare_baseline and r.stable:
        other = provider.query(MetricQuery(expression, {**variables, "version": r.stable}), now)
        base = None if isinstance(other, NoData) else other.value
    if isinstance(got, NoData):
        return QueryResult(0.0, None, base, got.query, got.reason)
    return QueryResult(0.0, got.value, base, got.query)


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _observe(
    svc: Services, ctx: _Context, r: Rollout, wants: ro.Wants, now: datetime
) -> Observation:
    """Measure what the analysis wants; a measurement that fails is an error of its checks
    (in ``Observation.errors``), never a failed tick."""
    canary = baseline = None
    errors: dict[str, tuple[ro.FaultKind, str]] = {}
    step = r.current_step
    checks = step.checks if isinstance(step, ro.Analysis) else ()
    if wants.counters:
        try:
            if r.policy.flag_routed:
                on, off = _cohort_arms(svc, r)
                canary, baseline = _arm(on), _arm(off)
            else:
                assert ctx.spec.router_kind is not None
                router = svc.counters(ctx.spec.router_kind)
                counts = router.counters(route_ref(svc, r.project, r.environment, ctx.spec))
                canary = _arm(counts.get(r.canary, Counters(0, 0)))
                baseline = _arm(counts.get(r.stable)) if r.stable else None
        except Exception as exc:  # any failure to measure is evidence
            for c in checks:
                if c.provider == "router":
                    errors[c.name] = (ro.FaultKind.ROUTER, _error_text(exc))
    queries: dict[str, QueryResult] = {}
    if wants.queries:
        try:
            provider = svc.metrics(prometheus_source(ctx.candidate.config_text))
        except Exception as exc:
            for check in wants.queries:
                errors[check.name] = (ro.FaultKind.METRIC, _error_text(exc))
        else:
            for check in wants.queries:
                try:
                    queries[check.name] = _query_check(provider, check, r, wants.interval_s, now)
                except Exception as exc:  # a failed query is a check's error
                    errors[check.name] = (ro.FaultKind.METRIC, _error_text(exc))
    return Observation(canary, baseline, queries, errors)


def _save(svc: Services, r: Rollout, d: Decision, owner: str | None) -> Rollout | None:
    """Save a decision taken on revision ``r.revision``; None when the rollout moved meanwhile.

    A decision that ends the rollout ends its deployment in the same transaction, so a crash
    can never leave a finished rollout holding a running deployment."""
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
        _complete(uow, svc, r, saved, now)
        uow.commit()
        return saved


# --- the executor: the one place effects are carried out ---------------------------------------


def _fault_of(effect: ro.Effect, exc: BaseException) -> ro.FaultKind:
    if isinstance(exc, NoInstanceError):
        return ro.FaultKind.INSTANCE
    if isinstance(effect, ro.Retire):
        return ro.FaultKind.TARGET
    return ro.FaultKind.ROUTER if isinstance(effect, ro.ApplyRoute) else ro.FaultKind.OTHER


def _apply_route(
    svc: Services, ctx: _Context, r: Rollout, e: ro.ApplyRoute, applied: _Applied
) -> None:
    if ctx.spec.router_kind is None:
        return  # no proxy: a flag-routed rollout's route is the flag, saved with the decision
    applied[r.id] = apply_route(svc, ctx.spec, ctx.deploy_spec, e.intent, applied.get(r.id))


def _drain(svc: Services, ctx: _Context, r: Rollout, e: ro.Drain, applied: _Applied) -> None:
    drain(svc, ctx.spec)


def _retire(svc: Services, ctx: _Context, r: Rollout, e: ro.Retire, applied: _Applied) -> None:
    svc.targets(ctx.spec.target_kind).retire(ctx.deploy_spec, e.candidate)


_Applied = MutableMapping[int, RoutePlan]
_EXECUTORS: dict[type[ro.Effect], Callable[[Services, _Context, Rollout, Any, _Applied], None]] = {
    ro.ApplyRoute: _apply_route,
    ro.Drain: _drain,
    ro.Retire: _retire,
}


def execute(
    svc: Services, ctx: _Context, r: Rollout, effects: Sequence[ro.Effect], applied: _Applied
) -> tuple[ro.EffectFailure, ...]:
    """Carry out ``effects`` in order, stopping at the first that fails (it is returned): a
    version still taking traffic is never stopped after its route change failed."""
    for effect in effects:
        try:
            _EXECUTORS[type(effect)](svc, ctx, r, effect, applied)
        except Exception as exc:  # every failure becomes a decision
            applied.pop(r.id, None)
            log.warning("rollout %s: could not %s: %s", r.id, effect.describe(), exc)
            return (ro.EffectFailure(effect, _error_text(exc), _fault_of(effect, exc)),)
    return ()


# --- the engine's step ---------------------------------------------------------------------------


def _record_fault(
    svc: Services, r: Rollout, owner: str | None, kind: ro.FaultKind, error: str
) -> Rollout:
    d = ro.fault(r, kind, error, svc.clock.now())
    return _save(svc, r, d, owner) or r


def fault(svc: Services, rollout_id: int, owner: str, exc: BaseException) -> Rollout:
    """A tick failed outside what ``tick`` guards: record it as the rollout's error streak."""
    with svc.uow() as uow:
        r = uow.rollouts.get(rollout_id)
    kind = ro.FaultKind.INSTANCE if isinstance(exc, NoInstanceError) else ro.FaultKind.OTHER
    return _record_fault(svc, r, owner, kind, _error_text(exc))


def tick(svc: Services, rollout_id: int, owner: str, applied: _Applied) -> Rollout:
    """One reconcile step of a leased rollout (see the module docstring): observe → decide →
    apply, with every failure turned into a decision."""
    with svc.uow() as uow:
        r = uow.rollouts.get(rollout_id)
    try:
        with svc.uow() as uow:
            ctx = _context(svc, uow, r)
    except Exception as exc:  # an environment that cannot be read is an error
        return _record_fault(svc, r, owner, ro.FaultKind.OTHER, _error_text(exc))
    canceled = ctx.deployment.state is not DeploymentState.RUNNING
    if canceled and r.phase in (Phase.PROGRESSING, Phase.PAUSED) and ro.faults.can_abort(r):
        d = ro.abort(r, user=ENGINE_ACTOR, now=svc.clock.now(), reason="deployment canceled")
        r = _save(svc, r, d, owner) or r
    if r.phase in (Phase.PROGRESSING, Phase.PAUSED):
        failed = next(
            iter(execute(svc, ctx, r, (ro.ApplyRoute(ro.proxy_route(r)),), applied)), None
        )
        if failed is not None:
            return _record_fault(svc, r, owner, failed.fault, failed.error)
    now = svc.clock.now()
    if r.phase is Phase.PAUSED and r.due_at is not None:  # the route is live; wait for a human
        r = _save(svc, r, Decision(replace(r, due_at=None, errors=None, last_error="")), owner) or r
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
        failed = next(iter(execute(svc, ctx, r, decided.effects, applied)), None)
        if failed is not None:
            return _record_fault(svc, r, owner, failed.fault, failed.error)
    if r.phase in (Phase.PROMOTING, Phase.ABORTING) or (
        r.phase is Phase.PROMOTED and not r.old_retired and r.due_at is not None and r.due_at <= now
    ):
        r = _finish(svc, ctx, r, owner, applied)
    return r


def _finish(
    svc: Services, ctx: _Context, r: Rollout, owner: str | None, applied: _Applied
) -> Rollout:
    """The deciding rollout's effects, then its outcome (with the deployment's, when it ends)."""
    failures = execute(svc, ctx, r, ro.ending_effects(r), applied)
    if not failures:
        applied.pop(r.id, None)
    done = ro.finish(r, svc.clock.now(), failures)
    return _save(svc, r, done, owner) or r


def _complete(uow: UnitOfWork, svc: Services, before: Rollout, r: Rollout, now: datetime) -> None:
    """A rollout that just ended ends its deployment, in the transaction that saves the ending:
    succeeded, or failed saying why and what could not be done."""
    if before.phase not in (Phase.PROMOTING, Phase.ABORTING) or r.phase not in (
        Phase.PROMOTED,
        Phase.ROLLED_BACK,
    ):
        return
    failure = None
    if r.phase is Phase.ROLLED_BACK:
        failure = f"rolled back: {r.reason}"
        if r.not_done:
            failure += f"; not done: {'; '.join(r.not_done)}"
    complete_deployment(
        svc,
        uow,
        r.deployment_id,
        failure=failure,
        log=_summary(r),
        now=now,
        code=ErrorCode.ROLLED_BACK.value if failure else "",
    )


def _summary(r: Rollout) -> str:
    text = f"rollout {r.phase.value}: {r.reason}\n"
    for item in r.not_done:
        text += f"not done: {item}\n"
    return text


# --- human commands -----------------------------------------------------------------------------


def _current(uow: UnitOfWork, project: Project, environment: str) -> Rollout:
    r = uow.rollouts.latest(project, environment)
    if r is None or not r.active:
        raise NotFoundError(
            f"no rollout in progress in {project.name}/{environment}",
            hint=f"see `shipyard rollout status {project.name} {environment}`",
        )
    return r


def _may_steer(actor: Actor, project: str | None = None, environment: str | None = None) -> None:
    """Deployers steer their rollouts; approvers too (they approve steps, and may stop one);
    each only where their token's scope holds."""
    action = Action.DEPLOY if actor.allows(Action.DEPLOY) else Action.APPROVE
    actor.require(action, project=project, environment=environment)


def may_steer(actor: Actor, project: str | None = None, environment: str | None = None) -> bool:
    """Whether ``actor`` may promote, pause, resume or abort: faces offer the buttons by this."""
    try:
        _may_steer(actor, project, environment)
    except PermissionDenied:
        return False
    return True


def _command(
    svc: Services, actor: Actor, project_name: str, environment: str, action: str, **kw: Any
) -> Rollout:
    _may_steer(actor, project_name, environment)
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


def retry(
    svc: Services, actor: Actor, project_name: str, environment: str, *, reason: str = ""
) -> Deployment:
    """Run an aborted (rolled-back) rollout again from its first step: a new deployment of the
    same candidate with the same policy, through the same gates as any deployment."""
    actor.require(Action.DEPLOY, project=project_name, environment=environment)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        r = uow.rollouts.latest(project, environment)
        if r is None:
            raise NotFoundError(f"no rollout has run in {project_name}/{environment}")
        if r.phase is not Phase.ROLLED_BACK:
            raise ConflictError(
                f"the rollout of {r.canary} in {environment} is {r.phase.value}: only a rolled "
                "back (aborted) rollout can be retried",
                code=ErrorCode.INVALID_TRANSITION,
                details={"phase": r.phase.value},
            )
        d = uow.deployments.get(r.deployment_id)
        later = [
            x
            for x in uow.deployments.history(project, environment)
            if x.id > d.id and x.state is not DeploymentState.CANCELED
        ]
        if later:
            raise ConflictError(
                f"deployment {later[0].id} of {later[0].candidate} came after the rolled back "
                f"one in {environment}; deploy the candidate you want instead",
                code=ErrorCode.INVALID_TRANSITION,
            )
    why = reason or f"retry of deployment {d.id} (rolled back: {r.reason})"
    return deploy(svc, actor, project_name, r.canary, environment, reason=why, policy=d.policy)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RolloutView:
    rollout: Rollout
    records: Sequence[RolloutRecordEntry]
    live: Mapping[str, Counters]  # per candidate, from the router now ({} when unreachable)
    url: str | None  # where users reach the environment
    routing: RoutePlan | None = None  # read back from the router now (None: none, unreachable)
    routing_error: str = ""  # why routing is None although the environment has a router


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
            router = svc.counters(ctx.spec.router_kind)
            live = router.counters(route_ref(svc, r.project, r.environment, ctx.spec))
        except ShipyardError:
            live = {}
    routing, why = observe_route(svc, r.project, ctx.spec)
    return RolloutView(r, entries, live, url, routing, why)


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
            if not execute(svc, ctx, r, (ro.ApplyRoute(ro.proxy_route(r)),), applied):
                done += 1
        except Exception as exc:  # the next tick records it as an error
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
    "retry",
    "status",
    "tick",
]
