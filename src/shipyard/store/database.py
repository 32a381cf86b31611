"""Engine creation and schema migration; SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """One engine per process; SQLite gets WAL and a busy timeout so API and engine threads share it."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

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


def session_factory(engine: Engine, audit_key: bytes | None = None) -> sessionmaker[Session]:
    """Sessions that seal audit rows with ``audit_key`` (without one: a key of this process)."""
    info = {} if audit_key is None else {"audit_key": audit_key}
    return sessionmaker(engine, expire_on_commit=False, info=info)
