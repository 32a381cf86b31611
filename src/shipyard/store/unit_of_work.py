"""One unit of work = one database transaction; the services commit it explicitly."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shipyard.errors import AdapterError, ConflictError, ShipyardError
from shipyard.ports.repositories import (
    AuditLog,
    CohortMetricsRepo,
    DeploymentRepo,
    EventLog,
    FlagRepo,
    FlagRequestRepo,
    FreezeRepo,
    IdempotencyRepo,
    JobQueue,
    ProjectRepo,
    ReleaseRepo,
    RolloutRepo,
    SecretRepo,
    SessionRepo,
    TokenRepo,
)
from shipyard.store.audit import AuditTrail, SqlAudit
from shipyard.store.cohorts import SqlCohorts
from shipyard.store.deployments import SqlDeployments
from shipyard.store.flag_requests import SqlFlagRequests
from shipyard.store.flags import SqlFlags
from shipyard.store.freezes import SqlFreezes
from shipyard.store.idempotency import SqlIdempotency
from shipyard.store.repositories import SqlEvents, SqlJobs, SqlProjects, SqlReleases, SqlTokens
from shipyard.store.rollouts import SqlRollouts
from shipyard.store.secrets import SqlSecrets
from shipyard.store.sessions import SqlSessions


def _mapped(exc: SQLAlchemyError) -> ShipyardError:
    """A unique index refusing a row is a conflict the caller may retry, not a server error: it is
    how the database keeps exactly-once when two requests race (migration 0010)."""
    if isinstance(exc, DBIntegrityError) and _unique_violation(exc):
        return ConflictError(
            "a concurrent request changed the same thing first; nothing was changed, retry"
        )
    return AdapterError(f"database error: {exc.__class__.__name__}")


def _unique_violation(exc: DBIntegrityError) -> bool:
    """PostgreSQL's SQLSTATE 23505, or SQLite's message (its driver gives no code)."""
    return getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(
        exc.orig
    )


class SqlUnitOfWork:
    session: Session
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

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def __enter__(self) -> Self:
        self.session = self._factory()
        self._trail = AuditTrail(self.session)
        self.projects = SqlProjects(self.session)
        self.releases = SqlReleases(self.session)
        self.tokens = SqlTokens(self.session)
        self.sessions = SqlSessions(self.session)
        self.events = SqlEvents(self.session, self._trail)
        self.audit = SqlAudit(self.session)
        self.jobs = SqlJobs(self.session)
        self.deployments = SqlDeployments(self.session)
        self.flags = SqlFlags(self.session, self._trail)
        self.rollouts = SqlRollouts(self.session, self._trail)
        self.cohorts = SqlCohorts(self.session)
        self.freezes = SqlFreezes(self.session)
        self.flag_requests = SqlFlagRequests(self.session)
        self.idempotency = SqlIdempotency(self.session)
        self.secrets = SqlSecrets(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._trail.discard()
        self.session.rollback()
        self.session.close()
        if isinstance(exc, SQLAlchemyError):
            raise _mapped(exc) from exc

    def commit(self) -> None:
        try:
            self._trail.seal()  # the chain heads are locked last, just before the commit
            self.session.commit()
        except SQLAlchemyError as exc:
            self.session.rollback()
            raise _mapped(exc) from exc

    def rollback(self) -> None:
        self._trail.discard()
        self.session.rollback()
