"""Deployments, approvals and vetoes: rows mapped to the domain records of domain.deployments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.approvals import Approval, Decision
from shipyard.domain.deployments import (
    ACTIVE,
    Deployment,
    DeploymentMode,
    DeploymentState,
    FreezeOverride,
)
from shipyard.domain.releases import Project
from shipyard.errors import ConflictError, NotFoundError
from shipyard.store.tables import ApprovalRow, DeploymentRow, ProjectRow, VetoRow


def _deployment(row: DeploymentRow, project: str) -> Deployment:
    override = None
    if row.override_reason is not None:
        override = FreezeOverride(
            reason=row.override_reason,
            requested_by=row.override_requested_by or row.requested_by,
            confirmed_by=row.override_confirmed_by,
            confirmed_at=row.override_confirmed_at,
        )
    return Deployment(
        id=row.id,
        project=project,
        environment=row.environment,
        candidate=row.candidate,
        mode=DeploymentMode(row.mode),
        state=DeploymentState(row.state),
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        from_candidate=row.from_candidate,
        reason=row.reason,
        override_freeze=override,
        waiting_for=tuple(row.waiting_for.get("items", [])),
        outcome=row.outcome,
        policy=row.policy,
        failure_code=row.failure_code or "",
    )


def _write(row: DeploymentRow, d: Deployment) -> None:
    row.state = d.state.value
    row.started_at = d.started_at
    row.finished_at = d.finished_at
    row.from_candidate = d.from_candidate
    row.reason = d.reason
    row.outcome = d.outcome
    row.policy = d.policy
    row.failure_code = d.failure_code
    row.waiting_for = {"items": list(d.waiting_for)}
    o = d.override_freeze
    row.override_reason = o.reason if o else None
    row.override_requested_by = o.requested_by if o else None
    row.override_confirmed_by = o.confirmed_by if o else None
    row.override_confirmed_at = o.confirmed_at if o else None


class SqlDeployments:
    def __init__(self, session: Session) -> None:
        self._s = session

    def _project_name(self, project_id: int) -> str:
        row = self._s.get(ProjectRow, project_id)
        if row is None:
            raise NotFoundError(f"project #{project_id} not found")
        return row.name

    def add(self, project: Project, candidate_id: int, d: Deployment) -> Deployment:
        row = DeploymentRow(
            project_id=project.id,
            environment=d.environment,
            candidate_id=candidate_id,
            candidate=d.candidate,
            mode=d.mode.value,
            requested_by=d.requested_by,
            requested_at=d.requested_at,
            log="",
        )
        _write(row, d)
        self._s.add(row)
        self._s.flush()
        return replace(d, id=row.id)

    def get(self, deployment_id: int) -> Deployment:
        row = self._s.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFoundError(f"deployment {deployment_id} not found")
        return _deployment(row, self._project_name(row.project_id))

    def lock(self, deployment_id: int) -> Deployment:
        """Read for update, so two transactions cannot change one deployment at once: a row lock
        on PostgreSQL; on SQLite every transaction already holds the write lock (BEGIN
        IMMEDIATE, store/database.py)."""
        q = select(DeploymentRow).where(DeploymentRow.id == deployment_id)
        if self._postgres():
            q = q.with_for_update()
        row = self._s.scalar(q)
        if row is None:
            raise NotFoundError(f"deployment {deployment_id} not found")
        return _deployment(row, self._project_name(row.project_id))

    def _postgres(self) -> bool:
        return self._s.get_bind().dialect.name == "postgresql"

    def lock_environments(self, project: Project) -> None:
        """Serialize requests for deployments of one project until this transaction ends.

        PostgreSQL locks the project's row, so a second request reads the first one's
        deployment (and is refused as a duplicate) instead of inserting its own; SQLite holds
        the database's write lock already. The partial unique indexes of migration 0010 stand
        behind both."""
        if self._postgres():
            self._s.execute(
                select(ProjectRow.id).where(ProjectRow.id == project.id).with_for_update()
            )

    def save(self, d: Deployment) -> None:
        row = self._s.get(DeploymentRow, d.id)
        if row is None:
            raise NotFoundError(f"deployment {d.id} not found")
        _write(row, d)
        self._s.flush()

    def append_log(self, deployment_id: int, text: str) -> None:
        row = self._s.get(DeploymentRow, deployment_id)
        if row is not None and text:
            row.log = (row.log + text)[-100_000:]

    def log(self, deployment_id: int) -> str:
        row = self._s.get(DeploymentRow, deployment_id)
        return row.log if row else ""

    def candidate_id(self, deployment_id: int) -> int:
        row = self._s.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFoundError(f"deployment {deployment_id} not found")
        return row.candidate_id

    def history(self, project: Project, environment: str | None = None) -> Sequence[Deployment]:
        """Newest first."""
        q = select(DeploymentRow).where(DeploymentRow.project_id == project.id)
        if environment is not None:
            q = q.where(DeploymentRow.environment == environment)
        rows = self._s.scalars(q.order_by(DeploymentRow.id.desc()))
        return [_deployment(r, project.name) for r in rows]

    def active(self) -> Sequence[Deployment]:
        rows = self._s.scalars(
            select(DeploymentRow)
            .where(DeploymentRow.state.in_([s.value for s in ACTIVE]))
            .order_by(DeploymentRow.id)
        )
        return [_deployment(r, self._project_name(r.project_id)) for r in rows]

    def add_approval(self, deployment_id: int, a: Approval) -> None:
        """One decision per person per deployment (a unique index holds it under any race)."""
        earlier = self._s.scalar(
            select(ApprovalRow.decision).where(
                ApprovalRow.deployment_id == deployment_id, ApprovalRow.user == a.user
            )
        )
        if earlier is not None:
            verb = "approved" if earlier == Decision.APPROVE.value else "rejected"
            raise ConflictError(
                f"{a.user} already {verb} deployment {deployment_id}",
                details={"deployment": deployment_id, "user": a.user},
            )
        self._s.add(
            ApprovalRow(
                deployment_id=deployment_id,
                user=a.user,
                roles={"roles": sorted(a.roles)},
                candidate=a.candidate,
                decision=a.decision.value,
                comment=a.comment,
                decided_at=a.decided_at,
            )
        )
        self._s.flush()

    def approvals(self, deployment_id: int) -> Sequence[Approval]:
        rows = self._s.scalars(
            select(ApprovalRow)
            .where(ApprovalRow.deployment_id == deployment_id)
            .order_by(ApprovalRow.id)
        )
        return [
            Approval(
                user=r.user,
                roles=frozenset(r.roles.get("roles", [])),
                decided_at=r.decided_at,
                candidate=r.candidate,
                decision=Decision(r.decision),
                comment=r.comment,
            )
            for r in rows
        ]

    def veto(
        self, project: Project, candidate: str, *, by: str, reason: str, now: datetime
    ) -> bool:
        exists = self._s.scalar(
            select(VetoRow).where(VetoRow.project_id == project.id, VetoRow.candidate == candidate)
        )
        if exists is not None:
            return False
        self._s.add(
            VetoRow(
                project_id=project.id,
                candidate=candidate,
                vetoed_by=by,
                reason=reason,
                vetoed_at=now,
            )
        )
        self._s.flush()
        return True

    def vetoed(self, project: Project) -> frozenset[str]:
        rows = self._s.scalars(select(VetoRow.candidate).where(VetoRow.project_id == project.id))
        return frozenset(rows)
