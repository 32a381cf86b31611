"""cohort metrics: counts apps report per flag variant, and the batches already counted

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cohort_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("batch_id", sa.String(length=100), nullable=False),
        sa.Column("received_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "environment", "batch_id"),
    )
    with op.batch_alter_table("cohort_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cohort_batches_project_id"), ["project_id"])
    op.create_table(
        "cohort_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("flag", sa.String(length=100), nullable=False),
        sa.Column("variant", sa.String(length=100), nullable=False),
        sa.Column("metric", sa.String(length=120), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "environment", "flag", "variant", "metric"),
    )
    with op.batch_alter_table("cohort_counters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cohort_counters_project_id"), ["project_id"])


def downgrade() -> None:
    with op.batch_alter_table("cohort_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_counters_project_id"))
    op.drop_table("cohort_counters")
    with op.batch_alter_table("cohort_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_batches_project_id"))
    op.drop_table("cohort_batches")
