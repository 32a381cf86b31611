"""Persistence ports: what the use cases read and write, in one unit of work (one transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self

from shipyard.domain.approvals import Approval
from shipyard.domain.audit import AuditReport, Head
from shipyard.domain.auth import Role
from shipyard.domain.deployments import Deployment
from shipyard.domain.events import Event, EventPage
from shipyard.domain.releases import Artifact, Candidate, CandidateStatus, Pick, Project, Release
from shipyard.domain.rollouts import Record, Rollout
from shipyard.domain.secrets import SecretInfo


class ProjectRepo(Protocol):
    def add(self, *, name: str, source: str, mainline: str, now: datetime) -> Project: ...
    def get(self, name: str) -> Project | None: ...
    def get_by_id(self, project_id: int) -> Project: ...
    def list(self) -> Sequence[Project]: ...


class ReleaseRepo(Protocol):
    def add_release(
        self,
        *,
        project: Project,
        version: str,
        branch: str,
        base_sha: str,
        actor: str,
        now: datetime,
    ) -> Release: ...
    def get_release(self, project: Project, version: str) -> Release | None: ...
    def get_release_by_id(self, release_id: int) -> Release: ...
    def list_releases(self, project: Project) -> Sequence[Release]:
        """Newest first."""

    def add_candidate(
        self,
        *,
        release: Release,
        number: int,
        name: str,
        sha: str,
        status: CandidateStatus,
        actor: str,
        now: datetime,
        config_text: str,
        picks: Sequence[Pick] = (),
    ) -> Candidate: ...
    def candidates(self, release: Release) -> Sequence[Candidate]:
        """Oldest first, with artifacts and picks."""

    def get_candidate(self, project: Project, name: str) -> Candidate | None: ...
    def get_candidate_by_id(self, candidate_id: int) -> Candidate: ...
    def finish_build(
        self,
        candidate_id: int,
        *,
        status: CandidateStatus,
        reason: str,
        now: datetime,
        artifacts: Sequence[Artifact],
    ) -> Candidate: ...
    def set_build_log(self, candidate_id: int, location: str) -> None: ...
    def add_artifact(self, candidate_id: int, artifact: Artifact) -> None: ...
    def picks_of_project(self, project: Project) -> Sequence[tuple[Release, Pick]]: ...


class TokenRecord(Protocol):
    id: int
    user: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What an unrevoked token grants: a user (known by its emails), a role, and where it holds
    (empty: everywhere)."""

    id: int
    user: str
    role: Role
    emails: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()


class TokenRepo(Protocol):
    def add(
        self,
        *,
        user: str,
        role: Role,
        token_hash: str,
        actor: str,
        now: datetime,
        emails: Sequence[str] = (),
        projects: Sequence[str] = (),
        environments: Sequence[str] = (),
    ) -> int: ...
    def find(self, token_hash: str) -> tuple[int, str, Role] | None:
        """(id, user, role) of an unrevoked token."""

    def grant(self, token_hash: str) -> TokenGrant | None:
        """Everything an unrevoked token grants."""

    def get(self, token_id: int) -> TokenGrant | None:
        """An unrevoked token by id."""

    def users_by_email(self) -> dict[str, frozenset[str]]:
        """Lower-cased email -> the users whose tokens (revoked or not) name it."""

    def emails_of(self, user: str) -> frozenset[str]:
        """Every email (lower-cased) the tokens of ``user`` name, revoked or not."""

    def global_admins(self) -> int:
        """How many unrevoked admin tokens hold everywhere (unscoped); locks them until commit,
        so call it before reading anything else in the transaction."""

    def count(self) -> int: ...
    def list(self) -> Sequence[dict[str, Any]]: ...
    def revoke(self, token_id: int, now: datetime) -> bool: ...


class SessionRepo(Protocol):
    """Dashboard sessions, known by the SHA-256 of their id; each belongs to one token."""

    def add(self, *, id_hash: str, token_id: int, now: datetime, expires_at: datetime) -> None: ...
    def token_hash(self, id_hash: str, now: datetime) -> str | None:
        """The hash of the token behind a live session (not revoked, not expired, its token
        not revoked); None otherwise."""
        ...

    def revoke(self, id_hash: str, now: datetime) -> int | None:
        """End a live session; its token's id, or None when there was none to end."""
        ...

    def revoke_for_token(self, token_id: int, now: datetime) -> int:
        """End every live session of a token; how many were ended."""
        ...


@dataclass(frozen=True, slots=True)
class ServerFreeze:
    """A freeze an operator put on an environment from the server (``shipyard freeze add``)."""

    id: int
    project: str
    environment: str
    start: datetime
    end: datetime
    reason: str
    created_by: str
    ended_at: datetime | None = None
    ended_by: str | None = None


class FlagRequestState(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class FlagRequest:
    """A flag change in a protected environment, waiting for approval (Unleash's change request)."""

    id: int
    project: str
    environment: str
    key: str
    kind: str  # the flag event it becomes when applied
    before: dict[str, Any] | None  # the definition it was asked against (None: a new flag)
    after: dict[str, Any]
    state: FlagRequestState
    approvals: tuple[str, ...]
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None


class FlagRequestRepo(Protocol):
    def add(
        self,
        project: Project,
        environment: str,
        key: str,
        *,
        kind: str,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        by: str,
        now: datetime,
    ) -> FlagRequest: ...
    def lock(self, request_id: int) -> FlagRequest | None:
        """The request, row-locked until commit."""

    def save(self, r: FlagRequest) -> None:
        """Store state, approvals and decision."""

    def list(
        self, project: Project, environment: str, *, pending_only: bool = True
    ) -> Sequence[FlagRequest]: ...


class FreezeRepo(Protocol):
    def add(
        self,
        project: Project,
        environment: str,
        *,
        start: datetime,
        end: datetime,
        reason: str,
        by: str,
        now: datetime,
    ) -> ServerFreeze: ...
    def get(self, freeze_id: int) -> ServerFreeze | None: ...
    def end(self, freeze_id: int, *, by: str, now: datetime) -> ServerFreeze | None:
        """End a freeze now (its end moves to ``now``); None when unknown or already over."""

    def list(
        self, project: Project | None = None, environment: str | None = None
    ) -> Sequence[ServerFreeze]:
        """Freezes, newest first; ``environment`` only with ``project``."""


class EventLog(Protocol):
    def append(
        self,
        *,
        actor: str,
        kind: str,
        subject: str,
        payload: dict[str, Any],
        now: datetime,
        project: str | None = None,
    ) -> None: ...
    def list(
        self,
        *,
        project: str | None = None,
        limit: int = 100,
        after_id: int = 0,
        kind: str | None = None,
    ) -> Sequence[Event]:
        """The oldest ``limit`` matching events above ``after_id``, oldest first (to follow the log).

        ``kind`` is a whole kind (``deployment.approved``) or a prefix that ends at a dot
        (``deployment`` matches ``deployment.*``)."""

    def newest(
        self,
        *,
        project: str | None = None,
        kind: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> EventPage:
        """The newest ``limit`` matching events below ``before``, newest first, in one query.

        ``kind`` matches as in ``list``. This is what a reader paging back through the log wants,
        without reading what lies above the page."""

    def kinds(self, *, project: str | None = None, limit: int = 200) -> Sequence[str]:
        """The distinct kinds recorded (in ``project``), sorted, at most ``limit`` of them."""


class AuditLog(Protocol):
    """The sealed chains of the audit log: their heads, and a walk that checks every seal."""

    def heads(self) -> Sequence[Head]: ...
    def verify(self, *, chains: Sequence[str] | None, anchor: str | None) -> AuditReport:
        """Check ``chains`` (None: every chain) and that one of them reaches ``anchor``."""
        ...


class JobQueue(Protocol):
    """Durable work for the engine: claimed with a lease so a dead worker's job is taken over."""

    def enqueue(self, *, kind: str, subject_id: int, now: datetime) -> int: ...
    def claim(
        self, *, kinds: Sequence[str], owner: str, now: datetime, lease_s: float
    ) -> tuple[int, str, int] | None:
        """(job id, kind, subject id) of a pending job or one whose lease expired."""

    def renew(self, job_id: int, *, owner: str, now: datetime, lease_s: float) -> bool: ...
    def complete(self, job_id: int, *, owner: str, now: datetime) -> bool: ...
    def attempts(self, job_id: int) -> int:
        """How many times the job was claimed."""

    def retry(self, job_id: int, *, owner: str, now: datetime, error: str, at: datetime) -> bool:
        """Release a failed job until ``at``; False when ``owner`` lost its lease."""

    def bury(self, job_id: int, *, owner: str, now: datetime, error: str) -> bool:
        """Mark a job dead (never claimed again), keeping its last error."""


class DeploymentRepo(Protocol):
    def add(self, project: Project, candidate_id: int, d: Deployment) -> Deployment:
        """Store a new deployment; returns it with its id."""

    def get(self, deployment_id: int) -> Deployment: ...
    def lock(self, deployment_id: int) -> Deployment:
        """Read for update, so concurrent workers serialize on one deployment."""

    def lock_environments(self, project: Project) -> None:
        """Serialize deployment requests of one project until the transaction ends."""

    def save(self, d: Deployment) -> None: ...
    def append_log(self, deployment_id: int, text: str) -> None: ...
    def log(self, deployment_id: int) -> str: ...
    def candidate_id(self, deployment_id: int) -> int: ...
    def history(self, project: Project, environment: str | None = None) -> Sequence[Deployment]:
        """Newest first."""

    def active(self) -> Sequence[Deployment]:
        """Every pending, awaiting or running deployment, oldest first."""

    def add_approval(self, deployment_id: int, a: Approval) -> None: ...
    def approvals(self, deployment_id: int) -> Sequence[Approval]: ...
    def veto(
        self, project: Project, candidate: str, *, by: str, reason: str, now: datetime
    ) -> bool: ...
    def vetoed(self, project: Project) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class RolloutRecordEntry:
    at: datetime
    record: Record


class RolloutRepo(Protocol):
    def add(self, project: Project, r: Rollout, now: datetime) -> Rollout: ...
    def get(self, rollout_id: int) -> Rollout: ...
    def for_deployment(self, deployment_id: int) -> Rollout | None: ...
    def latest(self, project: Project, environment: str) -> Rollout | None: ...
    def save(self, r: Rollout, now: datetime) -> Rollout | None:
        """Compare-and-set on ``r.revision``: None when another writer saved first."""

    def claim(
        self, *, owner: str, now: datetime, lease_s: float, rollout_id: int | None = None
    ) -> int | None: ...
    def active_ids(self) -> Sequence[int]: ...
    def holds_lease(self, rollout_id: int, owner: str, now: datetime) -> bool: ...
    def release(self, rollout_id: int, owner: str) -> None: ...
    def defer(self, rollout_id: int, owner: str, until: datetime, error: str) -> None:
        """Move the due time (no revision bump: a command saved meanwhile still wins)."""

    def add_records(self, r: Rollout, records: Sequence[Record], now: datetime) -> None: ...
    def records(
        self, rollout_id: int, limit: int | None = None
    ) -> Sequence[RolloutRecordEntry]: ...


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A POST sent with an ``Idempotency-Key``; ``status`` is None while the first one runs."""

    route: str
    request_hash: str
    status: int | None
    content_type: str
    response: str
    created_at: datetime


class IdempotencyRepo(Protocol):
    def get(self, actor: str, key: str) -> StoredRequest | None: ...
    def start(self, actor: str, key: str, *, route: str, request_hash: str, now: datetime) -> None:
        """Claim the key; a concurrent claim of the same key fails (a unique index)."""

    def finish(
        self, actor: str, key: str, *, status: int, content_type: str, response: str
    ) -> None: ...
    def forget(self, actor: str, key: str) -> None: ...
    def expire(self, before: datetime) -> int:
        """Drop keys created before ``before``; how many."""


class SecretRepo(Protocol):
    """Sealed values only: sealing and opening happen in the services, with the key."""

    def put(
        self,
        project_id: int,
        environment: str,
        name: str,
        sealed: bytes,
        *,
        actor: str,
        now: datetime,
    ) -> bool: ...
    def list(self, project_id: int, environment: str) -> Sequence[SecretInfo]: ...
    def sealed(self, project_id: int, environment: str) -> dict[str, bytes]: ...
    def remove(self, project_id: int, environment: str, name: str) -> bool: ...


class UnitOfWork(Protocol):
    idempotency: IdempotencyRepo
    projects: ProjectRepo
    releases: ReleaseRepo
    tokens: TokenRepo
    sessions: SessionRepo
    events: EventLog
    audit: AuditLog
    jobs: JobQueue
    deployments: DeploymentRepo
    flags: FlagRepo
    rollouts: RolloutRepo
    cohorts: CohortMetricsRepo
    freezes: FreezeRepo
    flag_requests: FlagRequestRepo
    secrets: SecretRepo

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back whatever was not committed."""

    def commit(self) -> None: ...
    def rollback(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FlagRecord:
    """One feature flag of one project environment; ``definition`` is the Unleash feature JSON."""

    id: int
    project: str
    environment: str
    key: str
    description: str
    definition: dict[str, Any]
    version: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FlagChangeRecord:
    """One change of one flag: who, when, the definition before and after."""

    id: int
    revision: int
    kind: str
    actor: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class FlagRepo(Protocol):
    """Flags per (project, environment), with a per-environment revision that is the ETag."""

    def revision(self, project: Project, environment: str) -> int:
        """0 while the environment has never had a flag."""

    def next_revision(self, project: Project, environment: str, now: datetime) -> int:
        """Increment (and lock, on PostgreSQL) the environment's revision; returns the new one."""

    def lock(self, project: Project, environment: str, now: datetime) -> None:
        """Serialize the writers of one environment until commit (creating it if needed)."""

    def get(self, project: Project, environment: str, key: str) -> FlagRecord | None: ...
    def list(self, project: Project, environment: str) -> Sequence[FlagRecord]:
        """By key."""

    def segments(self, project: Project, environment: str) -> Sequence[dict[str, Any]]: ...
    def set_segments(
        self, project: Project, environment: str, segments: Sequence[dict[str, Any]]
    ) -> None: ...
    def save(
        self,
        *,
        project: Project,
        environment: str,
        key: str,
        description: str,
        definition: dict[str, Any],
        actor: str,
        now: datetime,
    ) -> FlagRecord:
        """Insert the flag, or replace its description and definition (its version goes up)."""

    def add_change(
        self,
        flag: FlagRecord,
        *,
        revision: int,
        kind: str,
        actor: str,
        now: datetime,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None: ...
    def changes(self, flag: FlagRecord, limit: int = 100) -> Sequence[FlagChangeRecord]:
        """Newest first."""


@dataclass(frozen=True, slots=True)
class CohortCount:
    """``count`` more of ``metric`` (``exposures`` or ``outcome.<event>``) for one flag variant."""

    flag: str
    variant: str
    metric: str
    count: int


class CohortMetricsRepo(Protocol):
    """Cumulative counts per (project, environment, flag, variant, metric), reported by apps."""

    def add_batch(
        self,
        project: Project,
        environment: str,
        batch_id: str,
        counts: Sequence[CohortCount],
        now: datetime,
    ) -> bool:
        """Add the counts once per ``batch_id``; False (nothing added) for a batch seen before."""

    def totals(self, project: Project, environment: str, flag: str) -> dict[str, dict[str, int]]:
        """``{variant: {metric: cumulative count}}`` for one flag."""
