"""Composition root: the only module that wires settings, store and adapters into the services."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from shipyard.adapters.artifacts.local import LocalArtifactStore
from shipyard.adapters.builds.local import LocalBuilder
from shipyard.adapters.clock import SystemClock
from shipyard.adapters.git.cli import CliGitRepository
from shipyard.adapters.targets.registry import TargetRegistry
from shipyard.engine.worker import Worker
from shipyard.ports.clock import Clock
from shipyard.ports.git import GitRepository
from shipyard.services.context import Services
from shipyard.store.database import make_engine, migrate, session_factory
from shipyard.store.unit_of_work import SqlUnitOfWork


@dataclass
class Runtime:
    services: Services
    engine: Engine
    data_dir: Path
    targets: TargetRegistry

    def worker(self, poll_s: float = 0.2) -> Worker:
        return Worker(self.services, poll_s=poll_s)

    def close(self) -> None:
        self.targets.close()
        self.engine.dispose()


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'shipyard.db'}"


def bootstrap(
    data_dir: Path, database_url: str | None = None, clock: Clock | None = None
) -> Runtime:
    """Open (and migrate) the database and wire every port to its adapter."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(database_url or default_database_url(data_dir))
    migrate(engine)
    factory = session_factory(engine)
    mirrors = data_dir / "repos"

    repos: dict[str, GitRepository] = {}
    repos_lock = threading.Lock()

    def git_for(source: str) -> GitRepository:
        """One adapter per repository, so what it learns (the repo exists) is learned once."""
        with repos_lock:
            if source not in repos:
                key = hashlib.sha256(source.encode()).hexdigest()[:16]
                repos[source] = CliGitRepository(source, mirrors / key)
            return repos[source]

    targets = TargetRegistry()
    services = Services(
        uow=lambda: SqlUnitOfWork(factory),
        git=git_for,
        artifacts=LocalArtifactStore(data_dir / "artifacts"),
        builder=LocalBuilder(),
        clock=clock or SystemClock(),
        logs_dir=data_dir / "logs",
        targets=targets,
        state_dir=data_dir / "environments",
    )
    return Runtime(services, engine, data_dir, targets)
