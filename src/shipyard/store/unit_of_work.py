"""One unit of work = one database transaction; the services commit it explicitly."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shipyard.errors import AdapterError, ConflictError, ShipyardError
from shipyard.ports.repositories import (
    CohortMetricsRepo,
    DeploymentRepo,
    EventLog,
    FlagRepo,
    IdempotencyRepo,
    JobQueue,
    ProjectRepo,
    ReleaseRepo,
    RolloutRepo,
    TokenRepo,
)
from shipyard.store.cohorts import SqlCohorts
from shipyard.store.deployments import SqlDeployments
from shipyard.store.flags import SqlFlags
from shipyard.store.idempotency import SqlIdempotency
from shipyard.store.repositories import SqlEvents, SqlJobs, SqlProjects, SqlReleases, SqlTokens
from shipyard.store.rollouts import SqlRollouts


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
    events: EventLog
    jobs: JobQueue
    deployments: DeploymentRepo
    flags: FlagRepo
    rollouts: RolloutRepo
    cohorts: CohortMetricsRepo

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    def __enter__(self) -> Self:
        self.session = self._factory()
        self.projects = SqlProjects(self.session)
        self.releases = SqlReleases(self.session)
        self.tokens = SqlTokens(self.session)
        self.events = SqlEvents(self.session)
        self.jobs = SqlJobs(self.session)
        self.deployments = SqlDeployments(self.session)
        self.flags = SqlFlags(self.session)
        self.rollouts = SqlRollouts(self.session)
        self.cohorts = SqlCohorts(self.session)
        self.idempotency = SqlIdempotency(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.session.rollback()
        self.session.close()
        if isinstance(exc, SQLAlchemyError):
            raise _mapped(exc) from exc

    def commit(self) -> None:
        try:
            self.session.commit()
        except SQLAlchemyError as exc:
            self.session.rollback()
            raise _mapped(exc) from exc

    def rollback(self) -> None:
        self.session.rollback()
