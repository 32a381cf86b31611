"""Tables. Every schema change goes through an Alembic migration in store/migrations/versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (which drops the zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class ProjectRow(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(Text)
    mainline: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class ReleaseRow(Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("project_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    branch: Mapped[str] = mapped_column(String(255))
    base_sha: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]


class CandidateRow(Base):
    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("release_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    number: Mapped[int] = mapped_column(Integer)
    sha: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    config_text: Mapped[str] = mapped_column(Text, default="")
    build_log: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    built_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ArtifactRow(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("candidate_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str] = mapped_column(String(80))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    uri: Mapped[str | None] = mapped_column(Text, nullable=True)


class PickRow(Base):
    __tablename__ = "picks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    source_sha: Mapped[str] = mapped_column(String(64))
    new_sha: Mapped[str] = mapped_column(String(64))


class TokenRow(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # who the user is besides its name, and where the role holds (empty: everywhere)
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    projects: Mapped[list[str]] = mapped_column(JSON, default=list)
    environments: Mapped[list[str]] = mapped_column(JSON, default=list)


class FreezeRow(Base):
    """A server-side freeze of one environment; ending it early moves ``end`` to that moment."""

    __tablename__ = "freezes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    start: Mapped[datetime]
    end: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(255), nullable=True)


class SessionRow(Base):
    """A dashboard session: the cookie holds its id, this table only the id's SHA-256."""

    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class EventRow(Base):
    """The audit log. It is read newest first, by project and kind (the dashboard, the CLI).

    ``(project, id)`` and ``(kind, id)`` let those reads walk an index backwards from a cursor and
    stop after one page; ``(project, kind)`` lets the distinct kinds of a project be found one
    index seek per kind."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_project_id", "project", "id"),
        Index("ix_events_kind_id", "kind", "id"),
        Index("ix_events_project_kind", "project", "kind"),
        Index("uq_events_chain_seq", "chain", "chain_seq", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(100), nullable=True)
    subject: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]]
    chain: Mapped[str | None] = mapped_column(String(100), nullable=True)
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditChainRow(Base):
    """The head of one audit chain (a project, or "" for project-less events).

    Appending to a chain updates its head first: that row lock (PostgreSQL) or the write lock
    (SQLite) serializes the writers of one chain, and only of that chain."""

    __tablename__ = "audit_chains"
    chain: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    head: Mapped[str] = mapped_column(String(64), default="")


class JobRow(Base):
    """A build or deployment to run. ``lease_until`` is also when a failed job may be retried
    (its backoff); a job that failed ``attempts`` times is ``dead`` with its last ``error``."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    subject_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | done | dead
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


_LIVE = "state IN ('pending', 'awaiting_approval', 'running')"


class DeploymentRow(Base):
    """At most one running deployment per environment, and one live deployment of a candidate
    per environment: partial unique indexes, so a race cannot create a second (0010)."""

    __tablename__ = "deployments"
    __table_args__ = (
        Index(
            "uq_deployments_running",
            "project_id",
            "environment",
            unique=True,
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
        Index(
            "uq_deployments_live_candidate",
            "project_id",
            "environment",
            "candidate",
            unique=True,
            sqlite_where=text(_LIVE),
            postgresql_where=text(_LIVE),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    environment: Mapped[str] = mapped_column(String(100), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    candidate: Mapped[str] = mapped_column(String(80))
    mode: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32), index=True)
    requested_by: Mapped[str] = mapped_column(String(255))
    requested_at: Mapped[datetime]
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    from_candidate: Mapped[str | None] = mapped_column(String(80), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(Text, default="")
    waiting_for: Mapped[dict[str, Any]] = mapped_column(default=dict)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    override_requested_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    override_confirmed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    override_confirmed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    log: Mapped[str] = mapped_column(Text, default="")
    policy: Mapped[str | None] = mapped_column(String(100), nullable=True)
    failure_code: Mapped[str] = mapped_column(String(40), default="")


class RolloutRow(Base):
    """One rollout per deployment; the columns the engine selects on, the rest as JSON."""

    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    canary: Mapped[str] = mapped_column(String(80))
    stable: Mapped[str | None] = mapped_column(String(80), nullable=True)
    phase: Mapped[str] = mapped_column(String(16), index=True)
    active: Mapped[bool] = mapped_column(index=True)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")  # why the last tick failed
    state: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RolloutRecordRow(Base):
    """A rollout decision with its evidence; append-only like events."""

    __tablename__ = "rollout_records"
    __table_args__ = (Index("uq_rollout_records_chain_seq", "chain", "chain_seq", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]
    chain: Mapped[str | None] = mapped_column(String(100), nullable=True)
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("deployment_id", "user", name="uq_approvals_person"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), index=True)
    user: Mapped[str] = mapped_column(String(255))
    roles: Mapped[dict[str, Any]]
    candidate: Mapped[str] = mapped_column(String(80))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime]


class IdempotencyKeyRow(Base):
    """A POST's ``Idempotency-Key``: the first request's response is stored and replayed to a
    retry of the same request (same actor, route and body); ``status`` is null while it runs."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("actor", "key", name="uq_idempotency_actor_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    actor: Mapped[str] = mapped_column(String(64))  # a hash of the caller's credential
    route: Mapped[str] = mapped_column(String(600))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str] = mapped_column(String(255), default="")
    response: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(index=True)


class VetoRow(Base):
    __tablename__ = "vetoes"
    __table_args__ = (UniqueConstraint("project_id", "candidate"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    candidate: Mapped[str] = mapped_column(String(80))
    vetoed_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    vetoed_at: Mapped[datetime]


class FlagEnvironmentRow(Base):
    """The flags of one project environment: its revision (the ETag of its state) and segments."""

    __tablename__ = "flag_environments"
    __table_args__ = (UniqueConstraint("project_id", "environment"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


class FlagRow(Base):
    __tablename__ = "flags"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("flag_environments.id"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class FlagChangeRow(Base):
    """A flag's own history (before/after); the same change is also in the events log."""

    __tablename__ = "flag_changes"
    __table_args__ = (Index("uq_flag_changes_chain_seq", "chain", "chain_seq", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime]
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    chain: Mapped[str | None] = mapped_column(String(100), nullable=True)
    chain_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    chain_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class FlagRequestRow(Base):
    """A change to a flag of a protected environment, waiting for a second person."""

    __tablename__ = "flag_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(64))  # the flag event it becomes: flag.updated...
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    approvals: Mapped[list[str]] = mapped_column(JSON, default=list)
    requested_by: Mapped[str] = mapped_column(String(255))
    requested_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CohortBatchRow(Base):
    """A metrics batch an app reported: its id makes a retried report count once."""

    __tablename__ = "cohort_batches"
    __table_args__ = (UniqueConstraint("project_id", "environment", "batch_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    batch_id: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime]


class CohortCounterRow(Base):
    """A cumulative count of one metric for one flag variant (what the rollout judges read)."""

    __tablename__ = "cohort_counters"
    __table_args__ = (UniqueConstraint("project_id", "environment", "flag", "variant", "metric"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    flag: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(120))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class SecretRow(Base):
    """A secret of one project environment, sealed (AES-GCM, key outside the database)."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("project_id", "environment", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    environment: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(128))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    set_by: Mapped[str] = mapped_column(String(255))
    set_at: Mapped[datetime]
