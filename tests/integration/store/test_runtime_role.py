"""On PostgreSQL the server runs as a role that does not own the audit tables.

Migrations run as the owner (``--migration-database-url``), which grants the server's role
SELECT and INSERT on the audit tables and nothing more: whoever holds the server's database URL
(a deployed app that read it, say) can neither switch the guards off nor rewrite the log.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from shipyard.adapters import keyfile
from shipyard.bootstrap import Runtime, bootstrap
from shipyard.domain.auth import SYSTEM
from shipyard.services import tokens
from shipyard.store import audit
from shipyard.store.database import make_engine, owns_audit_tables
from tests.support import postgres

pytestmark = pytest.mark.postgres
_roles = itertools.count(1)


@pytest.fixture
def runtime(pg_server: postgres.PostgresServer, tmp_path: Path) -> Iterator[Runtime]:
    owner_url = pg_server.create_database()
    role = f"shipyard_app_{next(_roles)}_{tmp_path.name[-6:].replace('-', '_')}"
    owner = make_engine(owner_url)
    with owner.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    owner.dispose()
    app_url = make_url(owner_url).set(username=role).render_as_string(hide_password=False)
    rt = bootstrap(tmp_path / "data", app_url, migration_database_url=owner_url)
    yield rt
    rt.close()


def test_the_server_runs_and_seals_as_a_role_that_does_not_own_the_log(runtime: Runtime) -> None:
    assert not owns_audit_tables(runtime.engine)
    tokens.bootstrap_admin(runtime.services)  # a write and its event, as the server's role
    tokens.create_token(runtime.services, SYSTEM, user="ada", role="viewer")
    key_file = runtime.data_dir / "audit.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    with runtime.engine.connect() as conn:
        heads = audit.heads(conn)
        _, broken = audit.verify(conn, keyfile.load_or_create(key_file))
    assert [(h.chain, h.seq) for h in heads] == [("", 2)]
    assert broken is None


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE events DISABLE TRIGGER ALL",
        "ALTER TABLE events DISABLE TRIGGER USER",
        "DROP TRIGGER events_append_only ON events",
        "DELETE FROM events",
        "UPDATE events SET actor = 'mallory'",
        "TRUNCATE events",
        "TRUNCATE flag_changes",
        "DELETE FROM rollout_records",
        "DELETE FROM audit_chains",
        "TRUNCATE audit_chains",
        "UPDATE alembic_version SET version_num = '0001'",
    ],
)
def test_the_servers_role_cannot_rewrite_or_unguard_the_log(
    runtime: Runtime, statement: str
) -> None:
    tokens.bootstrap_admin(runtime.services)
    engine: Engine = runtime.engine
    with (
        pytest.raises(DBAPIError, match=r"permission denied|must be owner|append-only"),
        engine.begin() as conn,
    ):
        conn.execute(text(statement))
