"""Composition root: the only module that wires settings, store and adapters into the services."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url

from shipyard.adapters import children, keyfile
from shipyard.adapters.artifacts.local import LocalArtifactStore
from shipyard.adapters.builds.local import LocalBuilder
from shipyard.adapters.child_process import identity_for
from shipyard.adapters.children import ChildLedger
from shipyard.adapters.clock import SystemClock
from shipyard.adapters.git.cli import CliGitRepository
from shipyard.adapters.metrics.registry import make_provider
from shipyard.adapters.routers.haproxy import HaproxyRouter
from shipyard.adapters.routers.registry import CountersRegistry, RouterRegistry, missing_binary
from shipyard.adapters.secrets.aesgcm import AesGcmCipher
from shipyard.adapters.server_lock import DataDirInUse as DataDirInUse
from shipyard.adapters.server_lock import ServerLock as ServerLock
from shipyard.adapters.server_lock import hold as hold_data_dir
from shipyard.adapters.targets.local import LocalTarget
from shipyard.adapters.targets.registry import TargetRegistry
from shipyard.engine.worker import Worker
from shipyard.errors import ConfigError, InvalidError
from shipyard.ports.clock import Clock
from shipyard.ports.git import GitRepository
from shipyard.ports.metrics import MetricProvider
from shipyard.ports.routers import RouteRef
from shipyard.services.context import Services
from shipyard.store.database import (
    grant_runtime,
    make_engine,
    migrate,
    owns_audit_tables,
    runtime_role,
    session_factory,
)
from shipyard.store.unit_of_work import SqlUnitOfWork


@dataclass
class Runtime:
    services: Services
    engine: Engine
    data_dir: Path
    targets: TargetRegistry
    children: ChildLedger

    def worker(self, poll_s: float = 0.2) -> Worker:
        return Worker(self.services, poll_s=poll_s)

    def reap_children(self) -> list[str]:
        """Kill the builds and hooks a dead server on this data dir left, delete their temps."""
        return self.children.reap()

    def close(self) -> None:
        self.services.builder.stop()
        self.targets.close()
        self.engine.dispose()


log = logging.getLogger("shipyard")
AUDIT_KEY_FILE = "audit.key"  # in the data dir, when the operator names no file


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'shipyard.db'}"


def default_work_dir(data_dir: Path) -> Path:
    """Deployed code's files: beside the data dir for a plain user (its children run as it),
    under /var/lib for root, whose children run as another user that must reach them."""
    if os.geteuid() != 0:
        return data_dir / "work"
    key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path("/var/lib/shipyard-apps") / key


def _private(data_dir: Path) -> None:
    """The data dir (database, keys, state) is the server's alone: 0700, owned by its user."""
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        if data_dir.stat().st_uid != os.geteuid() and os.geteuid() == 0:
            os.chown(data_dir, 0, 0)
        data_dir.chmod(0o700)
    except OSError as exc:
        raise ConfigError(
            str(data_dir), None, "data dir", f"cannot be made private: {exc}"
        ) from exc


def _private_sqlite(url: str) -> None:
    """A SQLite file is the server's alone, wherever it is (its journals take its mode)."""
    name = make_url(url)
    if name.get_backend_name() == "sqlite" and name.database not in (None, "", ":memory:"):
        with contextlib.suppress(FileNotFoundError):
            Path(name.database).chmod(0o600)


def bootstrap(
    data_dir: Path,
    database_url: str | None = None,
    clock: Clock | None = None,
    *,
    audit_key_file: Path | None = None,
    migration_database_url: str | None = None,
    secrets_key_file: Path | None = None,
    work_dir: Path | None = None,
) -> Runtime:
    """Open (and migrate) the database and wire every port to its adapter.

    With ``migration_database_url`` (PostgreSQL: the role that owns the tables) the schema is
    migrated as that role, which then grants the server's own role (``database_url``'s user)
    what it needs and no more: SELECT and INSERT on the audit tables. ``secrets_key_file``
    (default: ``secrets.key`` in the data dir, made on first start) seals the secrets and
    ``audit_key_file`` the audit log; every replica must be given the same files."""
    _private(data_dir)
    identity_for(None)  # a root server makes its unprivileged user now: a failure shows at start
    cipher = AesGcmCipher.from_key_file(secrets_key_file or data_dir / "secrets.key")
    audit_key = keyfile.load_or_create(audit_key_file or data_dir / AUDIT_KEY_FILE, "audit key")
    url = database_url or default_database_url(data_dir)
    if migration_database_url:
        owner = make_engine(migration_database_url)
        try:
            migrate(owner, audit_key)
            grant_runtime(owner, runtime_role(url))
        finally:
            owner.dispose()
    engine = make_engine(url)
    if not migration_database_url:
        migrate(engine, audit_key)
    _private_sqlite(url)
    if owns_audit_tables(engine):
        log.warning(
            "the server's database role owns the audit tables, so their guards do not bind it: "
            "give the owner's URL as --migration-database-url and connect as another role"
        )
    factory = session_factory(engine, audit_key)
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

    ledger = ChildLedger(data_dir / "run" / "children")
    children.use(ledger)
    targets = TargetRegistry()
    routers = RouterRegistry()
    providers: dict[tuple[str, float], MetricProvider] = {}

    def metrics_for(source: Mapping[str, Any] | None) -> MetricProvider:
        """The candidate's prometheus, else SHIPYARD_PROMETHEUS_URL; one client per address."""
        address = (source or {}).get("address") or os.environ.get("SHIPYARD_PROMETHEUS_URL")
        if not address:
            raise InvalidError(
                "a prometheus check needs a Prometheus: set prometheus.address in shipyard.yaml "
                "or SHIPYARD_PROMETHEUS_URL for the server"
            )
        timeout = float((source or {}).get("timeout", 5.0))
        key = (address, timeout)
        if key not in providers:
            providers[key] = make_provider("prometheus", {"address": address, "timeout": timeout})
        return providers[key]

    services = Services(
        uow=lambda: SqlUnitOfWork(factory),
        git=git_for,
        artifacts=LocalArtifactStore(data_dir / "artifacts"),
        builder=LocalBuilder(ledger),
        clock=clock or SystemClock(),
        logs_dir=data_dir / "logs",
        targets=targets,
        state_dir=data_dir / "environments",
        routers=routers,
        counters=CountersRegistry(routers),
        metrics=metrics_for,
        secrets=cipher,
        work_dir=work_dir or default_work_dir(data_dir),
        router_binary=missing_binary,
    )
    return Runtime(services, engine, data_dir, targets, ledger)


def stop_environments(state_dir: Path, project: str, routers: Mapping[str, int | None]) -> None:
    """Stop what a stopped server left running for ``project`` (``shipyard demo``'s cleanup):
    each environment's HAProxy (``routers``: environment -> its router port, None without one)
    and its local instances."""
    target = LocalTarget()
    router = HaproxyRouter()
    try:
        for env, port in routers.items():
            env_dir = state_dir / "environments" / project / env
            if port is not None:
                router.stop(RouteRef(project, env, env_dir / "router", port))
            target.stop_all(env_dir)
    finally:
        target.close()


__all__ = [
    "DataDirInUse",
    "Runtime",
    "ServerLock",
    "bootstrap",
    "default_database_url",
    "hold_data_dir",
    "stop_environments",
]
