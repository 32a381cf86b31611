"""Engine creation and schema migration; SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """One engine per process; SQLite gets WAL and a busy timeout so API and engine threads share it.

    On SQLite every transaction begins with ``BEGIN IMMEDIATE``: it takes the write lock up
    front, so two transactions that read then write (two approvals of one deployment, two
    deploys of one candidate) run one after the other instead of both acting on what they read.
    A deferred transaction would instead fail, or both would write. This is SQLAlchemy's
    documented pysqlite recipe: the driver's own transaction handling is turned off and the
    ``begin`` event emits the BEGIN."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # pysqlite emits no BEGIN of its own
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, audit_key: bytes | None = None) -> None:
    """Bring the schema to the newest revision; safe to call on every start.

    ``audit_key`` seals an audit log written before the chain existed (migration 0008)."""
    cfg = alembic_config(engine)
    cfg.attributes["audit_key"] = audit_key
    command.upgrade(cfg, "head")


# What the server's role may do to the tables it does not own: everything but rewriting history.
_AUDIT = ("events", "rollout_records", "flag_changes")


def runtime_role(url: str) -> str:
    role = make_url(url).username
    if not role:
        raise ValueError("the server's database URL names no user (the role to grant)")
    return role


def grant_runtime(owner: Engine, role: str) -> None:
    """As the tables' owner, let ``role`` run the server: read and write its tables, but only
    read and append the audit tables, and move the chain heads forward (never delete them).

    Run after every migration, so tables a later migration adds are granted too."""
    if owner.dialect.name != "postgresql":
        return
    with owner.begin() as conn:
        who = owner.dialect.identifier_preparer.quote(role)
        if conn.execute(text("SELECT current_user")).scalar_one() == role:
            return  # one role for both: nothing to grant (the server warns)
        schema = owner.dialect.identifier_preparer.quote(
            conn.execute(text("SELECT current_schema()")).scalar_one()
        )
        audit = ", ".join(_AUDIT)
        for statement in (
            f"GRANT USAGE ON SCHEMA {schema} TO {who}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {who}",
            f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {audit} FROM {who}",
            f"REVOKE DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_chains FROM {who}",
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {who}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {who}",
        ):
            conn.execute(text(statement))


def owns_audit_tables(engine: Engine) -> bool:
    """On PostgreSQL, whether the connected role owns ``events`` (and so can drop its guards)."""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        owner = conn.execute(
            text("SELECT tableowner FROM pg_tables WHERE tablename = 'events'")
        ).scalar()
        return bool(owner == conn.execute(text("SELECT current_user")).scalar_one())


def session_factory(engine: Engine, audit_key: bytes | None = None) -> sessionmaker[Session]:
    """Sessions that seal audit rows with ``audit_key`` (without one: a key of this process)."""
    info = {} if audit_key is None else {"audit_key": audit_key}
    return sessionmaker(engine, expire_on_commit=False, info=info)
