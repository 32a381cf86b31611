"""Shared fixtures: databases (SQLite and a real PostgreSQL), a wired runtime, actors."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.reachable import pass_through

_OWN_BASETEMP = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """As root, a folder of this session's own for tmp_path: the shared /tmp/pytest-of-root is
    reset to 0700 whenever another session starts, which would lock deployed code (running as
    an unprivileged user) out of the files of a test still running."""
    if os.geteuid() == 0 and not config.option.basetemp and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="shipyard-tests-")
        config.stash[_OWN_BASETEMP] = Path(config.option.basetemp)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A passing session's own folder goes (a failing one's stays, to be looked at)."""
    own = session.config.stash.get(_OWN_BASETEMP, None)
    if own is not None and exitstatus == 0:
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(autouse=True)
def _reachable_tmp_path(request: pytest.FixtureRequest) -> None:
    """The files a test hands deployed code must be reachable by its user (see reachable.py)."""
    if os.geteuid() == 0 and "tmp_path" in request.fixturenames:
        pass_through(request.getfixturevalue("tmp_path"))

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
