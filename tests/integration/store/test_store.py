"""The store on real SQLite and PostgreSQL: migrations, append-only events, job leases."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shipyard.domain.auth import Role
from shipyard.store.database import make_engine, migrate, session_factory
from shipyard.store.tables import Base
from shipyard.store.unit_of_work import SqlUnitOfWork


@pytest.fixture
def uow_factory(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    migrate(engine)
    factory = session_factory(engine)
    yield lambda: SqlUnitOfWork(factory)
    engine.dispose()


def test_migrations_produce_exactly_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    migrate(engine)  # idempotent on every start
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_events_are_append_only(uow_factory, t0: datetime) -> None:  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        uow.events.append(actor="ada", kind="x.y", subject="s", payload={"a": 1}, now=t0)
        uow.commit()
    for statement in ("UPDATE events SET actor = 'eve'", "DELETE FROM events"):
        with uow_factory() as uow, pytest.raises(DBAPIError, match="append-only"):
            uow.session.execute(text(statement))
    with uow_factory() as uow:
        [event] = uow.events.list()
    assert (event.actor, event.payload, event.at) == ("ada", {"a": 1}, t0)


def test_a_job_is_claimed_once_until_its_lease_expires(uow_factory, t0: datetime) -> None:  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        job = uow.jobs.enqueue(kind="build", subject_id=7, now=t0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.jobs.claim(kinds=["build"], owner="w1", now=t0, lease_s=60) == (job, "build", 7)
        uow.commit()
    with uow_factory() as uow:
        assert (
            uow.jobs.claim(kinds=["build"], owner="w2", now=t0 + timedelta(seconds=30), lease_s=60)
            is None
        )
        assert uow.jobs.renew(job, owner="w2", now=t0, lease_s=60) is False
        uow.commit()
    later = t0 + timedelta(seconds=61)
    with uow_factory() as uow:
        assert uow.jobs.claim(kinds=["build"], owner="w2", now=later, lease_s=60) == (
            job,
            "build",
            7,
        )
        uow.commit()
    with uow_factory() as uow:
        assert uow.jobs.complete(job, owner="w1", now=later) is False  # the dead worker lost it
        assert uow.jobs.complete(job, owner="w2", now=later) is True
        uow.commit()
    with uow_factory() as uow:
        assert (
            uow.jobs.claim(kinds=["build"], owner="w3", now=later + timedelta(hours=1), lease_s=60)
            is None
        )


def test_tokens_are_found_by_hash_until_revoked(uow_factory, t0: datetime) -> None:  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        token_id = uow.tokens.add(
            user="ada", role=Role.DEPLOYER, token_hash="h" * 64, actor="admin", now=t0
        )
        uow.commit()
    with uow_factory() as uow:
        assert uow.tokens.find("h" * 64) == (token_id, "ada", Role.DEPLOYER)
        assert uow.tokens.revoke(token_id, t0) is True
        uow.commit()
    with uow_factory() as uow:
        assert uow.tokens.find("h" * 64) is None
        assert uow.tokens.revoke(token_id, t0) is False
