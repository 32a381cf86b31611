"""One unit of work = one database transaction; the services commit it explicitly."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shipyard.errors import AdapterError
from shipyard.ports.repositories import (
    AuditLog,
    CohortMetricsRepo,
    DeploymentRepo,
    EventLog,
    FlagRepo,
    FlagRequestRepo,
    FreezeRepo,
    JobQueue,
    ProjectRepo,
    ReleaseRepo,
    RolloutRepo,
    SessionRepo,
    TokenRepo,
)
from shipyard.store.audit import AuditTrail, SqlAudit
from shipyard.store.cohorts import SqlCohorts
from shipyard.store.deployments import SqlDeployments
from shipyard.store.flag_requests import SqlFlagRequests
from shipyard.store.flags import SqlFlags
from shipyard.store.freezes import SqlFreezes
from shipyard.store.repositories import SqlEvents, SqlJobs, SqlProjects, SqlReleases, SqlTokens
from shipyard.store.rollouts import SqlRollouts
from shipyard.store.sessions import SqlSessions


class SqlUnitOfWork:
    session: Session
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
            raise AdapterError(f"database error: {exc.__class__.__name__}") from exc

    def commit(self) -> None:
        try:
            self._trail.seal()  # the chain heads are locked last, just before the commit
            self.session.commit()
        except SQLAlchemyError as exc:
            self.session.rollback()
            raise AdapterError(f"database error: {exc.__class__.__name__}") from exc

    def rollback(self) -> None:
        self._trail.discard()
        self.session.rollback()
