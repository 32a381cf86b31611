"""One unit of work = one database transaction; the services commit it explicitly."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shipyard.errors import AdapterError
from shipyard.ports.repositories import (
    CohortMetricsRepo,
    DeploymentRepo,
    EventLog,
    FlagRepo,
    JobQueue,
    ProjectRepo,
    ReleaseRepo,
    RolloutRepo,
    SecretRepo,
    TokenRepo,
)
from shipyard.store.cohorts import SqlCohorts
from shipyard.store.deployments import SqlDeployments
from shipyard.store.flags import SqlFlags
from shipyard.store.repositories import SqlEvents, SqlJobs, SqlProjects, SqlReleases, SqlTokens
from shipyard.store.rollouts import SqlRollouts
from shipyard.store.secrets import SqlSecrets


class SqlUnitOfWork:
    session: Session
    projects: ProjectRepo
    releases: ReleaseRepo
    tokens: TokenRepo
    events: EventLog
    jobs: JobQueue
    deployments: DeploymentRepo
    flags: FlagRepo
    rollouts: RolloutRepo
    cohorts: CohortMetricsRepo
    secrets: SecretRepo

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
        self.secrets = SqlSecrets(self.session)
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
            raise AdapterError(f"database error: {exc.__class__.__name__}") from exc

    def commit(self) -> None:
        try:
            self.session.commit()
        except SQLAlchemyError as exc:
            self.session.rollback()
            raise AdapterError(f"database error: {exc.__class__.__name__}") from exc

    def rollback(self) -> None:
        self.session.rollback()
