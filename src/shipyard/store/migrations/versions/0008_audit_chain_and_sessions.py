"""a sealed audit chain, guards that hold, and dashboard sessions

Every audit row (events, rollout_records, flag_changes) gets its chain (its project, "" for
none), its position in that chain and its HMAC seal; ``audit_chains`` holds each chain's head.
Rows written before are sealed here, with the key the server hands in. The append-only guards are
remade: on SQLite they also refuse an insert over an existing id (``REPLACE INTO`` deletes the old
row without firing DELETE triggers), on PostgreSQL they also refuse ``TRUNCATE``.
``sessions`` holds the dashboard's server-side sessions (only hashes of their ids).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.tables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

AUDIT = ("events", "rollout_records", "flag_changes")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _drop_old_guards() -> None:
    if _sqlite():
        for table in ("events", "rollout_records"):
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        return
    for table in ("events", "rollout_records"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")


def _sqlite_guards() -> None:
    for table in AUDIT:
        message = f"{table} are append-only"
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        # REPLACE INTO / INSERT OR REPLACE remove the row in the way without a DELETE trigger
        # (unless recursive_triggers is on, which a direct connection need not set): refuse the
        # insert itself when its id or its chain position is taken
        op.execute(
            f"CREATE TRIGGER {table}_no_overwrite BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id "
            f"OR (chain = NEW.chain AND chain_seq = NEW.chain_seq)) "
            f"BEGIN SELECT RAISE(ABORT, '{message}: that row exists'); END"
        )
    op.execute(
        "CREATE TRIGGER audit_chains_no_delete BEFORE DELETE ON audit_chains "
        "BEGIN SELECT RAISE(ABORT, 'audit chains only move forward'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_chains_no_rewind BEFORE UPDATE ON audit_chains "
        "WHEN NEW.seq < OLD.seq OR NEW.chain <> OLD.chain "
        "BEGIN SELECT RAISE(ABORT, 'audit chains only move forward'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_chains_no_overwrite BEFORE INSERT ON audit_chains "
        "WHEN EXISTS (SELECT 1 FROM audit_chains WHERE chain = NEW.chain) "
        "BEGIN SELECT RAISE(ABORT, 'audit chains only move forward'); END"
    )


def _postgres_guards() -> None:
    op.execute(
        "CREATE FUNCTION shipyard_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
    )
    for table in AUDIT:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION shipyard_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION shipyard_append_only()"
        )
    op.execute(
        "CREATE FUNCTION shipyard_chain_forward() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF NEW.seq < OLD.seq OR NEW.chain <> OLD.chain THEN "
        "RAISE EXCEPTION 'audit chains only move forward'; END IF; RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_chains_forward BEFORE UPDATE ON audit_chains "
        "FOR EACH ROW EXECUTE FUNCTION shipyard_chain_forward()"
    )
    op.execute(
        "CREATE TRIGGER audit_chains_no_delete BEFORE DELETE ON audit_chains "
        "FOR EACH ROW EXECUTE FUNCTION shipyard_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_chains_no_truncate BEFORE TRUNCATE ON audit_chains "
        "FOR EACH STATEMENT EXECUTE FUNCTION shipyard_append_only()"
    )


def _seal_existing() -> None:
    bind = op.get_bind()
    if not any(bind.execute(sa.text(f"SELECT 1 FROM {t} LIMIT 1")).first() for t in AUDIT):
        return
    config = op.get_context().config
    key = config.attributes.get("audit_key") if config is not None else None
    if not isinstance(key, bytes):
        raise RuntimeError(
            "migration 0008 seals the existing audit log and needs the audit key: "
            "run it through `shipyard serve` (with --audit-key-file), not alembic alone"
        )
    from shipyard.store.audit import seal_existing

    seal_existing(bind, key)


def upgrade() -> None:
    _drop_old_guards()
    for table in AUDIT:
        op.add_column(table, sa.Column("chain", sa.String(length=100), nullable=True))
        op.add_column(table, sa.Column("chain_seq", sa.BigInteger(), nullable=True))
        op.add_column(table, sa.Column("chain_hash", sa.String(length=64), nullable=True))
        op.create_index(f"uq_{table}_chain_seq", table, ["chain", "chain_seq"], unique=True)
    op.create_table(
        "audit_chains",
        sa.Column("chain", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("created_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["token_id"], ["tokens.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id_hash"),
    )
    op.create_index("ix_sessions_token_id", "sessions", ["token_id"])
    _seal_existing()
    if _sqlite():
        _sqlite_guards()
    else:
        _postgres_guards()


def downgrade() -> None:
    if _sqlite():
        for table in AUDIT:
            for verb in ("update", "delete", "overwrite"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        for name in ("no_delete", "no_rewind", "no_overwrite"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_chains_{name}")
    else:
        for table in (*AUDIT, "audit_chains"):
            for name in ("append_only", "no_truncate", "forward", "no_delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS shipyard_chain_forward()")
        op.execute("DROP FUNCTION IF EXISTS shipyard_append_only()")
    op.drop_index("ix_sessions_token_id", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("audit_chains")
    for table in AUDIT:
        op.drop_index(f"uq_{table}_chain_seq", table_name=table)
        with op.batch_alter_table(table) as batch:
            for column in ("chain_hash", "chain_seq", "chain"):
                batch.drop_column(column)
    # the guards of 0001 and 0004, as they were
    for table in ("events", "rollout_records"):
        if _sqlite():
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'append-only'); END"
                )
        else:
            op.execute(
                f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'append-only'; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
            )
