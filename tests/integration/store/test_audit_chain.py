"""The sealed audit chain on real SQLite and PostgreSQL: writers, guards, edits behind its back.

Each attack opens the database directly, as a deployed app holding the database URL (or an
operator with ``psql``) would, and then checks what ``audit verify`` reads: the first broken row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from shipyard.domain.audit import BreakKind
from shipyard.store import audit
from shipyard.store.database import make_engine, migrate, session_factory
from shipyard.store.unit_of_work import SqlUnitOfWork

KEY = b"k" * 32
Uow = Callable[[], SqlUnitOfWork]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine, KEY)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> Uow:
    factory = session_factory(engine, KEY)
    return lambda: SqlUnitOfWork(factory)


def _append(
    uow: Uow, t0: datetime, n: int, project: str | None = "shop", actor: str = "ada"
) -> None:
    with uow() as u:
        for i in range(n):
            u.events.append(
                actor=actor,
                kind="x.done",
                subject=f"s{i}",
                payload={"i": i},
                now=t0,
                project=project,
            )
        u.commit()


def _verify(engine: Engine, **kw: Any) -> tuple[list[audit.ChainCheck], audit.Break | None]:
    with engine.connect() as conn:
        return audit.verify(conn, KEY, **kw)


def _flag_change(uow: Uow, t0: datetime) -> None:
    with uow() as u:
        project = u.projects.add(name="shop", source="/src", mainline="main", now=t0)
        flag = u.flags.save(
            project=project,
            environment="production",
            key="checkout",
            description="",
            definition={"on": True},
            actor="ada",
            now=t0,
        )
        rev = u.flags.next_revision(project, "production", t0)
        u.flags.add_change(
            flag,
            revision=rev,
            kind="flag.created",
            actor="ada",
            now=t0,
            before=None,
            after={"on": 1},
        )
        u.events.append(
            actor="ada", kind="flag.created", subject="checkout", payload={}, now=t0, project="shop"
        )
        u.commit()


def test_an_untouched_log_verifies_across_projects_and_tables(
    engine: Engine, uow: Uow, t0: datetime
) -> None:
    _append(uow, t0, 3)
    _append(uow, t0, 2, project=None)
    _flag_change(uow, t0)
    checks, broken = _verify(engine)
    assert broken is None
    assert {c.chain: c.length for c in checks} == {"": 2, "shop": 5}
    with engine.connect() as conn:
        heads = {h.chain: h for h in audit.heads(conn)}
        seqs = conn.execute(text("SELECT chain_seq FROM flag_changes")).scalars().all()
    assert heads["shop"].seq == 5 and heads["shop"].hash == checks[1].last
    assert seqs == [4]  # the flag change sits in its project's chain, between the events


def test_one_transaction_writing_to_several_chains_seals_each(
    engine: Engine, uow: Uow, t0: datetime
) -> None:
    with uow() as u:
        for project in ("b", None, "a", "b", "b", None):
            u.events.append(actor="ada", kind="x", subject="s", payload={}, now=t0, project=project)
        u.commit()
    _append(uow, t0, 1, project="b")
    checks, broken = _verify(engine)
    assert broken is None
    assert {c.chain: c.length for c in checks} == {"": 2, "a": 1, "b": 4}


def test_a_rolled_back_unit_of_work_leaves_no_audit_row(
    engine: Engine, uow: Uow, t0: datetime
) -> None:
    with uow() as u:
        u.events.append(actor="ada", kind="x", subject="s", payload={}, now=t0, project="shop")
    assert _verify(engine) == ([], None)


@pytest.mark.slow
def test_twenty_concurrent_writers_of_one_project_never_fork_its_chain(
    engine: Engine, uow: Uow, t0: datetime
) -> None:
    start = threading.Barrier(20)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            start.wait()
            _append(uow, t0, 2, actor=f"w{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    checks, broken = _verify(engine)
    assert broken is None
    assert [(c.chain, c.length) for c in checks] == [("shop", 40)]


def test_an_actor_changed_behind_the_servers_back_names_that_event(
    engine: Engine, uow: Uow, t0: datetime
) -> None:
    _append(uow, t0, 3)
    with engine.begin() as conn:
        victim = conn.execute(text("SELECT id FROM events WHERE chain_seq = 2")).scalar_one()
        _without_guards(conn, "events")
        conn.execute(text("UPDATE events SET actor = 'mallory' WHERE id = :i"), {"i": victim})
    _, broken = _verify(engine)
    assert broken is not None and broken.kind is BreakKind.CHANGED
    assert (broken.table, broken.id, broken.chain, broken.seq) == ("events", victim, "shop", 2)
    assert f"event {victim} (seq 2), project shop" in broken.message


def test_a_deleted_event_is_found_missing(engine: Engine, uow: Uow, t0: datetime) -> None:
    _append(uow, t0, 3)
    with engine.begin() as conn:
        _without_guards(conn, "events")
        conn.execute(text("DELETE FROM events WHERE chain_seq = 2"))
    _, broken = _verify(engine)
    assert broken is not None and broken.kind is BreakKind.MISSING and broken.seq == 3


def test_a_forged_row_is_found(engine: Engine, uow: Uow, t0: datetime) -> None:
    _append(uow, t0, 2)
    with engine.begin() as conn:
        good = conn.execute(text("SELECT chain_hash FROM events WHERE chain_seq = 2")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO events (id, at, actor, kind, project, subject, payload, chain, "
                "chain_seq, chain_hash) VALUES (99, :at, 'mallory', 'token.created', 'shop', "
                "'token 9', '{}', 'shop', 3, :h)"
            ),
            {"at": t0, "h": good},
        )
        conn.execute(text("UPDATE audit_chains SET seq = 3 WHERE chain = 'shop'"))
    _, broken = _verify(engine)
    assert broken is not None and broken.kind is BreakKind.CHANGED and broken.id == 99


def test_a_row_inserted_without_a_seal_is_found(engine: Engine, uow: Uow, t0: datetime) -> None:
    _append(uow, t0, 1)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (at, actor, kind, project, subject, payload) "
                "VALUES (:at, 'mallory', 'x', 'shop', 's', '{}')"
            ),
            {"at": t0},
        )
    _, broken = _verify(engine)
    assert broken is not None and broken.kind is BreakKind.UNSEALED


def test_a_truncated_log_no_longer_matches_its_head_or_anchor(
    engine: Engine, uow: Uow, t0: datetime
) -> None:
    _append(uow, t0, 3)
    checks, _ = _verify(engine)
    anchor = checks[0].last
    with engine.begin() as conn:
        _without_guards(conn, "events")
        conn.execute(text("DELETE FROM events"))
    _, broken = _verify(engine)
    assert broken is not None and broken.kind is BreakKind.HEAD
    with engine.begin() as conn:  # the careful attacker resets the head too
        _without_guards(conn, "audit_chains")
        conn.execute(text("DELETE FROM audit_chains"))
    assert _verify(engine)[1] is None  # an empty log is consistent...
    _, broken = _verify(engine, anchor=anchor)  # ...but does not reach what was anchored
    assert broken is not None and broken.kind is BreakKind.ANCHOR


def test_an_anchor_inside_the_log_is_reached(engine: Engine, uow: Uow, t0: datetime) -> None:
    _append(uow, t0, 2)
    anchor = _verify(engine)[0][0].last
    _append(uow, t0, 2)
    assert _verify(engine, anchor=anchor)[1] is None
    assert _verify(engine, only=["shop"], anchor="0" * 64)[1] is not None


def _without_guards(conn: Any, table: str) -> None:
    """What an attacker owning the database does first: take the triggers away."""
    if conn.dialect.name == "sqlite":
        names = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
            {"t": table},
        ).scalars()
        for name in list(names):
            conn.execute(text(f"DROP TRIGGER {name}"))
    else:
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


# --- the guards --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET actor = 'mallory'",
        "DELETE FROM events",
        "UPDATE flag_changes SET actor = 'mallory'",
        "DELETE FROM flag_changes",
        "DELETE FROM audit_chains",
        "UPDATE audit_chains SET seq = 0",
    ],
)
def test_the_database_refuses_to_rewrite_the_audit_log(
    engine: Engine, uow: Uow, t0: datetime, statement: str
) -> None:
    _flag_change(uow, t0)
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text(statement))


def test_replace_into_cannot_rewrite_an_events_actor_on_sqlite(
    engine: Engine, uow: Uow, t0: datetime
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("REPLACE is SQLite's")
    _append(uow, t0, 1)
    for verb in ("REPLACE INTO", "INSERT OR REPLACE INTO", "INSERT OR IGNORE INTO"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(
                text(
                    f"{verb} events (id, at, actor, kind, project, subject, payload) "
                    "SELECT id, at, 'mallory', kind, project, subject, payload FROM events"
                )
            )
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("REPLACE INTO audit_chains (chain, seq, head) VALUES ('shop', 0, '')"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM events")).scalar_one() == "ada"
    assert _verify(engine)[1] is None


def test_truncate_is_refused_on_postgres(engine: Engine, uow: Uow, t0: datetime) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    _flag_change(uow, t0)
    for table in ("events", "rollout_records", "flag_changes", "audit_chains"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {table} CASCADE"))


def test_a_log_written_before_the_chain_is_sealed_by_the_migration(
    database_url: str, t0: datetime
) -> None:
    engine = make_engine(database_url)
    from alembic import command

    from shipyard.store.database import alembic_config

    command.upgrade(alembic_config(engine), "0006")
    with engine.begin() as conn:
        for i, project in enumerate(["shop", None, "shop"]):
            conn.execute(
                text(
                    "INSERT INTO events (at, actor, kind, project, subject, payload) "
                    "VALUES (:at, 'ada', 'x', :p, :s, '{}')"
                ),
                {"at": t0, "p": project, "s": f"s{i}"},
            )
    migrate(engine, KEY)
    checks, broken = _verify(engine)
    engine.dispose()
    assert broken is None
    assert {c.chain: c.length for c in checks} == {"": 1, "shop": 2}
