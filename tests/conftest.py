"""Shared fixtures: databases (SQLite and a real PostgreSQL), a wired runtime, actors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import postgres

# the memory target and router exist for the tests only: registered here, never offered to users
pytest_plugins = ["tests.support.adapters"]


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
