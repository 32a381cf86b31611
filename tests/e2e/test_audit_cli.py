"""`shipyard audit verify` against a real server, after edits made behind its back.

The attacker opens the database directly (a deployed app that read the database URL, an
operator with ``sqlite3`` or ``psql``), takes the guards away and edits the log; the operator
runs ``audit verify`` and must be told, exit 7, which event was touched. Each attack is then
undone, which makes the log verify again: the seals cover exactly the rows' content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from shipyard.cli.errors import EXIT_INTEGRITY
from shipyard.store.database import make_engine
from tests.support.server import ServerProcess, ok

pytestmark = pytest.mark.slow


def _unguarded(engine: Engine, statements: list[tuple[str, dict[str, Any]]]) -> None:
    """Run ``statements`` with the triggers of the audit tables off (as their owner can)."""
    with engine.begin() as conn:
        tables = ("events", "audit_chains")
        if conn.dialect.name == "sqlite":
            saved = _drop_triggers(conn, tables)
        else:
            for t in tables:
                conn.execute(text(f"ALTER TABLE {t} DISABLE TRIGGER USER"))
        for sql, params in statements:
            conn.execute(text(sql), params)
        if conn.dialect.name == "sqlite":
            for sql in saved:
                conn.execute(text(sql))
        else:
            for t in tables:
                conn.execute(text(f"ALTER TABLE {t} ENABLE TRIGGER USER"))


def _drop_triggers(conn: Connection, tables: tuple[str, ...]) -> list[str]:
    rows = conn.execute(
        text("SELECT name, sql, tbl_name FROM sqlite_master WHERE type = 'trigger'")
    ).all()
    saved = []
    for name, sql, table in rows:
        if table in tables:
            conn.execute(text(f"DROP TRIGGER {name}"))
            saved.append(sql)
    return saved


def test_audit_verify_names_each_edit_made_behind_the_servers_back(
    tmp_path: Path, database_url: str
) -> None:
    server = ServerProcess(tmp_path / "data", database_url).start()
    engine = make_engine(database_url)
    try:
        for user in ("ada", "grace", "linus"):
            ok(server.cli("token", "create", "--user", user, "--role", "viewer"))
        assert "audit log intact: 4 rows in 1 chain" in ok(server.cli("audit", "verify")).out
        anchor = ok(server.cli("audit", "head", "--json")).json()[0]["hash"]
        server.stop()  # a restart reads the same key file: the seals still verify
        server.start()
        assert (tmp_path / "data" / "audit.key").stat().st_mode & 0o777 == 0o600
        ok(server.cli("audit", "verify", "--anchor", anchor))
        with engine.connect() as conn:
            victim = dict(
                conn.execute(text("SELECT * FROM events WHERE chain_seq = 2")).mappings().one()
            )
        where = f"event {victim['id']} (seq 2), no project"

        # 1. an actor rewritten
        change = "UPDATE events SET actor = :a WHERE id = :i"
        _unguarded(engine, [(change, {"a": "mallory", "i": victim["id"]})])
        broken = server.cli("audit", "verify")
        assert broken.code == EXIT_INTEGRITY, broken
        assert where in broken.err and "does not match its seal" in broken.err
        as_json = server.cli("audit", "verify", "--json")
        assert as_json.code == EXIT_INTEGRITY
        assert '"kind": "changed"' in as_json.err and f'"id": {victim["id"]}' in as_json.err
        _unguarded(engine, [(change, {"a": victim["actor"], "i": victim["id"]})])
        ok(server.cli("audit", "verify"))

        # 2. an event deleted, then put back as it was
        _unguarded(engine, [("DELETE FROM events WHERE id = :i", {"i": victim["id"]})])
        broken = server.cli("audit", "verify")
        assert broken.code == EXIT_INTEGRITY and "position 2 is missing" in broken.err, broken
        columns = ", ".join(victim)
        values = ", ".join(f":{c}" for c in victim)
        restore = f"INSERT INTO events ({columns}) VALUES ({values})"
        _unguarded(engine, [(restore, {**victim, "payload": _json(victim["payload"])})])
        ok(server.cli("audit", "verify"))

        # 3. a forged event appended, head moved to match
        forged = {**victim, "id": 999, "chain_seq": 5, "actor": "mallory"}
        _unguarded(
            engine,
            [
                (restore, {**forged, "payload": _json(forged["payload"])}),
                ("UPDATE audit_chains SET seq = 5 WHERE chain = ''", {}),
            ],
        )
        broken = server.cli("audit", "verify")
        assert broken.code == EXIT_INTEGRITY and "event 999 (seq 5)" in broken.err, broken

        # 4. the log emptied together with its head: only the anchor can tell
        _unguarded(engine, [("DELETE FROM events", {}), ("DELETE FROM audit_chains", {})])
        ok(server.cli("audit", "verify"))
        broken = server.cli("audit", "verify", "--anchor", anchor)
        assert broken.code == EXIT_INTEGRITY and "cut back or rewritten" in broken.err, broken
        bad = server.cli("audit", "verify", "--anchor", "not-a-hash")
        assert bad.code == 5 and "64 hexadecimal" in bad.err
    finally:
        engine.dispose()
        server.stop()


def _json(value: Any) -> str:
    """A JSON column as read raw: SQLite gives its text back, psycopg a parsed value."""
    return value if isinstance(value, str) else json.dumps(value)
