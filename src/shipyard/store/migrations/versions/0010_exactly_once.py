"""exactly once: unique approvals and live deployments, idempotency keys, dead jobs

- ``approvals``: one decision per person per deployment (unique). Duplicates a race left are
  dropped first, keeping each person's first decision (the one the gates counted first).
- ``deployments``: at most one running deployment per environment and one live deployment of a
  candidate per environment (partial unique indexes). Duplicates a race left are canceled first,
  keeping the oldest, with the reason in their outcome.
- ``jobs.error``: why a job last failed; a job past its attempt cap is ``dead``.
- ``idempotency_keys``: the stored responses of POSTs sent with an ``Idempotency-Key``.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_LIVE = "state IN ('pending', 'awaiting_approval', 'running')"
_DUPLICATE = "canceled by migration 0010: a duplicate of an older live deployment"


def _cancel_duplicates(where: str, columns: str) -> None:
    op.execute(
        f"UPDATE deployments SET state = 'canceled', outcome = '{_DUPLICATE}' "
        f"WHERE {where} AND id NOT IN (SELECT MIN(id) FROM deployments WHERE {where} "
        f"GROUP BY {columns})"
    )


def upgrade() -> None:
    op.execute(
        "DELETE FROM approvals WHERE id NOT IN "
        '(SELECT MIN(id) FROM approvals GROUP BY deployment_id, "user")'
    )
    with op.batch_alter_table("approvals") as batch:
        batch.create_unique_constraint("uq_approvals_person", ["deployment_id", "user"])

    _cancel_duplicates(_LIVE, "project_id, environment, candidate")
    _cancel_duplicates("state = 'running'", "project_id, environment")
    for name, columns, where in (
        ("uq_deployments_running", ["project_id", "environment"], "state = 'running'"),
        ("uq_deployments_live_candidate", ["project_id", "environment", "candidate"], _LIVE),
    ):
        op.create_index(
            name,
            "deployments",
            columns,
            unique=True,
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )

    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("error", sa.Text(), nullable=False, server_default=""))

    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=600), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("actor", "key", name="uq_idempotency_actor_key"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("error")
    op.drop_index("uq_deployments_live_candidate", table_name="deployments")
    op.drop_index("uq_deployments_running", table_name="deployments")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_constraint("uq_approvals_person", type_="unique")
