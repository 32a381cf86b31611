"""Deployments: ask, approve, reject, roll back, veto; status, history and diff."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shipyard.api.bounds import IdPath, Name, Text
from shipyard.api.deps import Me, Svc
from shipyard.api.schemas import RoutingOut, VetoOut
from shipyard.domain.changelog import build_changelog
from shipyard.domain.deployments import Deployment
from shipyard.services import deployments

router = APIRouter(prefix="/api/v1", tags=["deployments"])


class DeployIn(BaseModel):
    candidate: Name
    environment: Name
    override_freeze: bool = False
    reason: Text = ""
    policy: Name | None = None


class DecisionIn(BaseModel):
    comment: Text = ""


class RollbackIn(BaseModel):
    environment: Name
    reason: Text = ""
    to: Name | None = None  # a named earlier good candidate; else the previous one


class VetoIn(BaseModel):
    reason: Text = ""


class DeploymentOut(BaseModel):
    id: int
    project: str
    environment: str
    candidate: str
    mode: str
    state: str
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    from_candidate: str | None
    reason: str
    outcome: str
    failure_code: str = Field(
        "", description="why it failed (an error code: digest_mismatch, rolled_back, ...)"
    )
    waiting_for: list[str]
    policy: str | None = None
    override_freeze: dict[str, str | None] | None = None
    log: str | None = Field(None, description="what the target printed (detail view only)")

    @classmethod
    def of(cls, d: Deployment, log: str | None = None) -> DeploymentOut:
        o = d.override_freeze
        return cls(
            id=d.id,
            project=d.project,
            environment=d.environment,
            candidate=d.candidate,
            mode=d.mode.value,
            state=d.state.value,
            requested_by=d.requested_by,
            requested_at=d.requested_at,
            started_at=d.started_at,
            finished_at=d.finished_at,
            duration_s=(d.finished_at - d.started_at).total_seconds()
            if d.finished_at and d.started_at
            else None,
            from_candidate=d.from_candidate,
            reason=d.reason,
            outcome=d.outcome,
            failure_code=d.failure_code,
            waiting_for=list(d.waiting_for),
            policy=d.policy,
            override_freeze={
                "reason": o.reason,
                "requested_by": o.requested_by,
                "confirmed_by": o.confirmed_by,
            }
            if o
            else None,
            log=log,
        )


class InstanceOut(BaseModel):
    candidate: str
    address: str
    pid: int | None
    healthy: bool
    identity: str  # verified | unverified: whether the target read the candidate from it


class PlacementOut(BaseModel):
    environment: str
    candidate: str | None  # what answers there (``recorded`` is what the deployments say)
    identity: str | None  # verified | unverified; null when no instance runs
    recorded: str | None
    configured: int | None  # instances the target settings ask for; null when it cannot count
    running: int  # instances of ``candidate``
    healthy: int  # ... of which healthy
    summary: str  # "2 configured, 1 healthy"
    others: list[str]  # other candidates running there (a canary, leftovers)
    vetoed: dict[str, VetoOut]  # running candidates that are vetoed
    since: datetime | None
    by: str | None
    pending: list[DeploymentOut]
    frozen_until: str | None
    instances: list[InstanceOut]
    routing: RoutingOut | None = None  # read back from the environment's router now


class DiffOut(BaseModel):
    environment: str
    running: str | None
    candidate: str
    changelog: list[dict[str, object]]


@router.post("/projects/{project}/deployments", status_code=201)
def deploy(project: str, body: DeployIn, svc: Svc, me: Me) -> DeploymentOut:
    return DeploymentOut.of(
        deployments.deploy(
            svc,
            me,
            project,
            body.candidate,
            body.environment,
            override_freeze=body.override_freeze,
            reason=body.reason,
            policy=body.policy,
        )
    )


@router.get("/projects/{project}/deployments")
def history(project: str, svc: Svc, me: Me, environment: Name | None = None) -> list[DeploymentOut]:
    return [DeploymentOut.of(d) for d in deployments.history(svc, me, project, environment)]


@router.get("/deployments/{deployment_id}")
def show(deployment_id: IdPath, svc: Svc, me: Me) -> DeploymentOut:
    d, log = deployments.get_deployment(svc, me, deployment_id)
    return DeploymentOut.of(d, log)


@router.post("/deployments/{deployment_id}/approve")
def approve(deployment_id: IdPath, body: DecisionIn, svc: Svc, me: Me) -> DeploymentOut:
    return DeploymentOut.of(
        deployments.decide(svc, me, deployment_id, approve=True, comment=body.comment)
    )


@router.post("/deployments/{deployment_id}/reject")
def reject(deployment_id: IdPath, body: DecisionIn, svc: Svc, me: Me) -> DeploymentOut:
    return DeploymentOut.of(
        deployments.decide(svc, me, deployment_id, approve=False, comment=body.comment)
    )


@router.post("/projects/{project}/rollbacks", status_code=201)
def rollback(project: str, body: RollbackIn, svc: Svc, me: Me) -> DeploymentOut:
    return DeploymentOut.of(
        deployments.rollback(svc, me, project, body.environment, reason=body.reason, to=body.to)
    )


@router.post("/projects/{project}/candidates/{candidate}/veto", status_code=204)
def veto(project: str, candidate: str, body: VetoIn, svc: Svc, me: Me) -> None:
    deployments.veto(svc, me, project, candidate, reason=body.reason)


@router.get("/projects/{project}/status")
def status(project: str, svc: Svc, me: Me) -> list[PlacementOut]:
    _, rows = deployments.status(svc, me, project)
    return [
        PlacementOut(
            environment=r.environment,
            candidate=r.candidate,
            identity=r.reading.identity.value if r.reading and r.reading.identity else None,
            recorded=r.reading.recorded if r.reading else r.candidate,
            configured=r.reading.configured if r.reading else None,
            running=r.reading.running if r.reading else 0,
            healthy=r.reading.healthy if r.reading else 0,
            summary=r.reading.summary if r.reading else "",
            others=list(r.reading.others) if r.reading else [],
            vetoed={
                name: VetoOut(by=v.by, at=v.at, reason=v.reason) for name, v in r.vetoed.items()
            },
            since=r.since,
            by=r.by,
            pending=[DeploymentOut.of(d) for d in r.pending],
            frozen_until=r.frozen_until,
            instances=[
                InstanceOut(
                    candidate=i.candidate,
                    address=i.address,
                    pid=i.pid,
                    healthy=i.healthy,
                    identity=i.identity.value,
                )
                for i in r.instances
            ],
            routing=RoutingOut.of(r.routing),
        )
        for r in rows
    ]


@router.get("/projects/{project}/environments/{environment}/diff/{candidate}")
def diff(project: str, environment: str, candidate: str, svc: Svc, me: Me) -> DiffOut:
    running, commits = deployments.diff(svc, me, project, environment, candidate)
    return DiffOut(
        environment=environment,
        running=running,
        candidate=candidate,
        changelog=[
            {"sha": e.sha, "subject": e.subject, "author": e.author, "pr": e.pr, "type": e.type}
            for e in build_changelog(commits)
        ],
    )
