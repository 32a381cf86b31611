"""Rollouts: the live view of an environment's rollout, the human commands, the evidence."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from shipyard.analysis.checks import quantile_from_buckets
from shipyard.api.bounds import IdPath, Text
from shipyard.api.deps import Me, Svc
from shipyard.api.routes.deployments import DeploymentOut
from shipyard.api.schemas import RoutingOut
from shipyard.domain.rollouts import Analysis, Rollout, flag_percent
from shipyard.ports.routers import Counters
from shipyard.services import rollouts
from shipyard.services.rollouts import RolloutView, cohort_label

router = APIRouter(prefix="/api/v1", tags=["rollouts"])


class StepOut(BaseModel):
    index: int
    kind: str
    description: str
    state: str  # done | current | next


class RecordOut(BaseModel):
    at: datetime
    kind: str
    step: int
    actor: str
    message: str
    evidence: dict[str, Any]


class VersionOut(BaseModel):
    candidate: str
    role: str  # stable | canary
    requests: int
    errors_5xx: int
    error_ratio: float | None
    latency_ms_avg: float | None
    latency_ms: dict[str, float | None] = Field(
        default_factory=dict, description="p50/p95/p99 since the router started, from its histogram"
    )


class ErrorStreakOut(BaseModel):
    source: str = Field(description="tick, or check NAME for a check's measurements")
    fault: str = Field(description="router, target, metric, instance or other")
    error: str
    count: int = Field(description="errors in a row; at the policy's limit on_error acts")
    limit: int
    first_seen: datetime
    last_seen: datetime


class RolloutOut(BaseModel):
    id: int
    deployment_id: int
    project: str
    environment: str
    canary: str
    stable: str | None
    policy: str
    strategy: str
    router: str = Field(description="haproxy (proxy weights) or flag (a flag's rollout)")
    flag: str | None = Field(None, description="router: flag — the flag the rollout moves")
    flag_percent: float | None = Field(
        None, description="router: flag — the share of users the rollout wants the flag on for"
    )
    phase: str
    step: int
    steps: list[StepOut]
    weight: float
    segment: str | None
    mirror: float
    pause_reason: str
    reason: str
    approvals: list[str]
    checks: list[dict[str, Any]]
    due_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    last_error: str
    paused_for: str = Field(
        "", description="human, pause_step, approval, inconclusive or errors ('' unless paused)"
    )
    awaiting: str = Field("", description="the command a paused rollout waits for")
    errors: list[ErrorStreakOut] = Field(
        default_factory=list, description="the error streaks now: the tick's and each check's"
    )
    not_done: list[str] = Field(
        default_factory=list, description="what its ending could not do (it ended anyway)"
    )
    url: str | None
    routing: RoutingOut | None = Field(
        None, description="what the router serves now, read back from it (not the saved state)"
    )
    routing_error: str = Field("", description="why routing is null though there is a router")
    versions: list[VersionOut]
    records: list[RecordOut]


def _quantile(c: Counters, q: float) -> float | None:
    v = quantile_from_buckets(c.latency_buckets, q)
    return round(v * 1000, 2) if v is not None and math.isfinite(v) else None


def _arms(r: Rollout) -> tuple[tuple[str, str | None], ...]:
    """(role, key in the live counters): two versions, or a flag's off and on users."""
    if r.policy.flag_routed:
        return (("stable", cohort_label(r, False)), ("canary", cohort_label(r, True)))
    return (("stable", r.stable), ("canary", r.canary))


def _versions(r: Rollout, live: dict[str, Counters]) -> list[VersionOut]:
    out = []
    for role, candidate in _arms(r):
        if candidate is None or candidate not in live:
            continue
        c = live[candidate]
        out.append(
            VersionOut(
                candidate=candidate,
                role=role,
                requests=c.requests,
                errors_5xx=c.errors_5xx,
                error_ratio=c.errors_5xx / c.requests if c.requests else None,
                latency_ms_avg=c.response_time_ms_avg if c.requests else None,
                latency_ms={
                    "p50": _quantile(c, 0.5),
                    "p95": _quantile(c, 0.95),
                    "p99": _quantile(c, 0.99),
                },
            )
        )
    return out


def _streaks(r: Rollout) -> list[ErrorStreakOut]:
    found = [(r.errors, r.policy.error_limit())] if r.errors else []
    step = r.current_step
    if r.analysis is not None and isinstance(step, Analysis):
        limits = {c.name: r.policy.error_limit(c) for c in step.checks}
        found += [(s, limits.get(n, r.policy.error_limit())) for n, s in r.analysis.errors.items()]
    return [
        ErrorStreakOut(
            source=s.source,
            fault=s.fault.value,
            error=s.message,
            count=s.count,
            limit=limit,
            first_seen=s.first_at,
            last_seen=s.last_at,
        )
        for s, limit in found
        if s is not None
    ]


def to_out(view: RolloutView) -> RolloutOut:
    r = view.rollout
    steps = [
        StepOut(
            index=i,
            kind=s.kind,
            description=s.describe(),
            state="done" if i < r.step else ("current" if i == r.step else "next"),
        )
        for i, s in enumerate(r.policy.steps)
    ]
    checks = [x.to_dict() for x in r.analysis.results] if r.analysis else []
    return RolloutOut(
        id=r.id,
        deployment_id=r.deployment_id,
        project=r.project,
        environment=r.environment,
        canary=r.canary,
        stable=r.stable,
        policy=r.policy.name,
        strategy=r.policy.strategy,
        router=r.policy.router,
        flag=r.policy.flag,
        flag_percent=flag_percent(r) if r.policy.flag_routed else None,
        phase=r.phase.value,
        step=r.step,
        steps=steps,
        weight=r.weight,
        segment=r.segment.describe() if r.segment else None,
        mirror=r.mirror,
        pause_reason=r.pause_reason,
        reason=r.reason,
        approvals=list(r.approvals),
        checks=_finite(checks),
        due_at=r.due_at,
        created_at=r.created_at,
        finished_at=r.finished_at,
        last_error=r.last_error,
        paused_for=r.paused_for.value,
        awaiting=r.awaiting,
        errors=_streaks(r),
        not_done=list(r.not_done),
        url=view.url,
        routing=RoutingOut.of(view.routing),
        routing_error=view.routing_error,
        versions=_versions(r, dict(view.live)),
        records=[
            RecordOut(
                at=e.at,
                kind=e.record.kind,
                step=e.record.step,
                actor=e.record.actor,
                message=e.record.message,
                evidence=_finite(dict(e.record.evidence)),
            )
            for e in view.records
        ],
    )


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class PromoteIn(BaseModel):
    full: bool = Field(False, description="skip every remaining step: 100% now")


class AbortIn(BaseModel):
    reason: Text = ""


class RetryIn(BaseModel):
    reason: str = Field("", description="why (recorded with the new deployment)")


@router.get("/projects/{project}/environments/{environment}/rollout")
def status(
    project: str, environment: str, svc: Svc, me: Me, records: int = Query(10, ge=0, le=1000)
) -> RolloutOut:
    return to_out(rollouts.status(svc, me, project, environment, records=records))


def _after(svc: Svc, me: Me, project: str, environment: str) -> RolloutOut:
    return to_out(rollouts.status(svc, me, project, environment))


@router.post("/projects/{project}/environments/{environment}/rollout/promote")
def promote(project: str, environment: str, body: PromoteIn, svc: Svc, me: Me) -> RolloutOut:
    rollouts.promote(svc, me, project, environment, full=body.full)
    return _after(svc, me, project, environment)


@router.post("/projects/{project}/environments/{environment}/rollout/pause")
def pause(project: str, environment: str, svc: Svc, me: Me) -> RolloutOut:
    rollouts.pause(svc, me, project, environment)
    return _after(svc, me, project, environment)


@router.post("/projects/{project}/environments/{environment}/rollout/resume")
def resume(project: str, environment: str, svc: Svc, me: Me) -> RolloutOut:
    rollouts.resume(svc, me, project, environment)
    return _after(svc, me, project, environment)


@router.post("/projects/{project}/environments/{environment}/rollout/abort")
def abort(project: str, environment: str, body: AbortIn, svc: Svc, me: Me) -> RolloutOut:
    rollouts.abort(svc, me, project, environment, reason=body.reason)
    return _after(svc, me, project, environment)


@router.post("/projects/{project}/environments/{environment}/rollout/retry")
def retry(project: str, environment: str, body: RetryIn, svc: Svc, me: Me) -> DeploymentOut:
    """A new deployment of the rolled-back candidate, its rollout from the first step."""
    return DeploymentOut.of(rollouts.retry(svc, me, project, environment, reason=body.reason))


@router.get("/projects/{project}/deployments/{deployment_id}/rollout")
def explain(project: str, deployment_id: IdPath, svc: Svc, me: Me) -> RolloutOut:
    return to_out(rollouts.explain(svc, me, project, deployment_id))
