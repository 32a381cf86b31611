"""Where a deployment's traffic goes: the environment's router, the plan, the rollout records.

Shared by the deployment job (a plain deploy switches 100% at once; a policy starts a rollout)
and the rollout engine, so there is one way to build a route and one way to record a decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from shipyard.domain import rollouts as ro
from shipyard.domain.deployments import Deployment
from shipyard.domain.releases import Project
from shipyard.domain.rollouts import Record, Rollout
from shipyard.errors import ConflictError, NoInstanceError, ShipyardError
from shipyard.ports.repositories import UnitOfWork
from shipyard.ports.routers import Backend, RoutePlan, RouteRef, SegmentMatch
from shipyard.ports.targets import DeploySpec
from shipyard.services import flags
from shipyard.services.context import Services
from shipyard.services.project_config import EnvironmentSpec
from shipyard.services.releases import get_project

ENGINE_ACTOR = "shipyard"


def route_ref(svc: Services, project: str, environment: str, spec: EnvironmentSpec) -> RouteRef:
    assert spec.router_port is not None
    return RouteRef(
        project=project,
        environment=environment,
        state_dir=svc.state_dir / project / environment / "router",
        listen_port=spec.router_port,
    )


def _segment(rule: ro.SegmentRule | None) -> SegmentMatch | None:
    if rule is None:
        return None
    return SegmentMatch(rule.kind, rule.name, rule.value, rule.negate, rule.regex)


def plan_for(intent: ro.RouteIntent, addresses: Mapping[str, tuple[str, ...]]) -> RoutePlan:
    def backend(candidate: str) -> Backend:
        found = addresses.get(candidate, ())
        if not found:
            raise NoInstanceError(f"{candidate} has no running instance to send traffic to")
        return Backend(candidate, found)

    stable = backend(intent.stable) if intent.stable is not None else None
    if intent.canary is None:
        return RoutePlan(stable=stable)
    return RoutePlan(
        stable=stable,
        canary=backend(intent.canary),
        canary_weight=intent.weight,
        segment=_segment(intent.segment),
        mirror_percent=intent.mirror,
    )


def instances(
    svc: Services, spec: EnvironmentSpec, deploy_spec: DeploySpec
) -> dict[str, tuple[str, ...]]:
    """Addresses per candidate of what runs in the environment now."""
    target = svc.targets(spec.target_kind)
    found: dict[str, list[str]] = {}
    for inst in target.running(deploy_spec.project, spec.rules.name, deploy_spec.state_dir):
        found.setdefault(inst.candidate, []).append(inst.address)
    return {c: tuple(sorted(a)) for c, a in found.items()}


def apply_route(
    svc: Services,
    spec: EnvironmentSpec,
    deploy_spec: DeploySpec,
    intent: ro.RouteIntent,
    last: RoutePlan | None = None,
) -> RoutePlan:
    """Start (or adopt) the environment's proxy and make ``intent`` live; idempotent.

    ``last``: what the caller knows it applied before; the proxy is left alone when it matches."""
    assert spec.router_kind is not None
    plan = plan_for(intent, instances(svc, spec, deploy_spec))
    if plan == last:
        return plan
    router = svc.routers(spec.router_kind)
    ref = route_ref(svc, deploy_spec.project, spec.rules.name, spec)
    router.ensure(ref)
    router.apply(ref, plan)
    return plan


def observe_route(
    svc: Services, project: str, spec: EnvironmentSpec
) -> tuple[RoutePlan | None, str]:
    """What the environment's router serves now, read back from the router itself (not from the
    saved rollout): (plan, "") or (None, why not) when it has none or cannot tell."""
    if spec.router_kind is None or spec.router_port is None:
        return None, ""
    try:
        ref = route_ref(svc, project, spec.rules.name, spec)
        return svc.routers(spec.router_kind).observe(ref), ""
    except ShipyardError as exc:
        return None, exc.message


def drain(svc: Services, spec: EnvironmentSpec) -> None:
    """Let requests already sent to a version finish before it is stopped."""
    if spec.router_kind is not None and spec.router_drain_s > 0:
        svc.clock.sleep(spec.router_drain_s)


def record(uow: UnitOfWork, r: Rollout, records: Sequence[Record], now: datetime) -> None:
    """Decision records and their audit events, in the caller's transaction.

    For a ``router: flag`` rollout the route *is* data: the flag's rollout percentage is written
    here too, so the decision and the flag change it wants commit (or fail) together.
    """
    if r.policy.flag_routed and records:
        follow_flag(uow, r, now)
    uow.rollouts.add_records(r, records, now)
    for rec in records:
        uow.events.append(
            actor=rec.actor if rec.actor != ro.ENGINE else ENGINE_ACTOR,
            kind=f"rollout.{rec.kind}",
            subject=f"deployment {r.deployment_id}",
            project=r.project,
            now=now,
            payload={
                "environment": r.environment,
                "candidate": r.canary,
                "stable": r.stable,
                "step": rec.step,
                "message": rec.message,
            },
        )


def follow_flag(uow: UnitOfWork, r: Rollout, now: datetime) -> None:
    """Make the policy's flag carry the share of users the rollout wants (an audited change)."""
    assert r.policy.flag is not None
    project = get_project(uow, r.project)
    percent = ro.flag_percent(r)
    flags.follow_rollout(
        uow, project, r.environment, r.policy.flag, percent, actor=ENGINE_ACTOR, now=now
    )


def begin(
    uow: UnitOfWork, project: Project, d: Deployment, policy: ro.PolicySpec, now: datetime
) -> Rollout:
    """The new version is healthy beside the old: a rollout takes over from here."""
    r = Rollout(
        id=0,
        deployment_id=d.id,
        project=project.name,
        environment=d.environment,
        canary=d.candidate,
        stable=d.from_candidate,
        policy=policy,
        requested_by=d.requested_by,
        created_at=now,
    )
    take_over_warm_colour(uow, project, d, now)
    started = ro.start(r, now)
    saved = uow.rollouts.add(project, started.rollout, now)
    record(uow, saved, started.records, now)
    return saved


def take_over_warm_colour(uow: UnitOfWork, project: Project, d: Deployment, now: datetime) -> None:
    """A promoted blue-green rollout keeps its old colour warm until ``retire_at``. When the new
    deployment brings that very candidate back (a new rollout's canary, or a rollback or direct
    deploy that succeeded), the old rollout must not stop it later: its retirement is handed
    over (recorded), and the candidate lives on."""
    old = uow.rollouts.latest(project, d.environment)
    if old is None or old.phase is not ro.Phase.PROMOTED or old.old_retired:
        return
    if old.stable != d.candidate:
        return  # it retires a version this deployment does not use, on time
    done = replace(old, old_retired=True, due_at=None, retire_at=None)
    saved = uow.rollouts.save(done, now)
    if saved is None:
        raise ConflictError("the previous rollout changed meanwhile; try again")
    why = f"{old.stable} kept: deployment {d.id} brings it back"
    record(uow, saved, (ro.Record(ro.RecordKind.RETIRED, old.step, ENGINE_ACTOR, why),), now)


def abort_rollout_of(
    uow: UnitOfWork, d: Deployment, *, by: str, reason: str, now: datetime
) -> bool:
    """Abort the rollout that holds running deployment ``d``, in the caller's transaction;
    False when no rollout steers it (the caller cancels the deployment itself). A rollout
    already promoting or aborting is left to end: its ending ends the deployment."""
    r = uow.rollouts.for_deployment(d.id)
    if r is None or r.phase not in ro.ACTIVE_PHASES:
        return False
    if r.phase in (ro.Phase.PROMOTING, ro.Phase.ABORTING):
        return True
    if not ro.faults.can_abort(r):
        return False
    decided = ro.abort(r, user=by, now=now, reason=reason)
    saved = uow.rollouts.save(replace(decided.rollout, due_at=now), now)
    if saved is None:
        raise ConflictError("the rollout changed meanwhile; try again")
    record(uow, saved, decided.records, now)
    return True
