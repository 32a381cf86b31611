"""Shared fixtures: databases (SQLite and a real PostgreSQL), a wired runtime, actors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import postgres


@pytest.fixture(autouse=True)
def _reachable_tmp_path(request: pytest.FixtureRequest) -> None:
    """As root, deployed code, hooks and builds run as an unprivileged user, like an operator's
    would: the files a test hands them (scripts, checkouts) must be reachable by it. pytest makes
    its temporary folders 0700; they are opened for passing through (not listing) here."""
    if os.geteuid() != 0 or "tmp_path" not in request.fixturenames:
        return
    path: Path = request.getfixturevalue("tmp_path")
    for folder in (path, *path.parents[:2]):  # the test's folder, pytest-N, pytest-of-root
        if folder.stat().st_uid == 0 and folder.stat().st_mode & 0o777 == 0o700:
            folder.chmod(0o711)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.PostgresServer]:
    if not postgres.available():
        pytest.fail("PostgreSQL is not installed: run scripts/setup (it installs it)")
    server = postgres.PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on both databases: they must behave the same."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shipyard.db'}"
    server: postgres.PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def t0() -> datetime:
    return datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
