"""gates that hold: token emails and scopes, server-side freezes, flag change requests

Tokens gain the emails of their user (commit authors are matched on any of them) and the projects
and environments their role holds in (empty: everywhere, as every existing token). ``freezes``
holds the freezes operators put on an environment from the server, read live by the gates.
``flag_requests`` holds flag changes in protected environments waiting for a second person.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        for column in ("emails", "projects", "environments"):
            batch_op.add_column(
                sa.Column(column, sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
            )
    op.create_table(
        "freezes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("start", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("freezes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_freezes_project_id"), ["project_id"])
    op.create_table(
        "flag_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("approvals", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("requested_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("decided_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flag_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_requests_project_id"), ["project_id"])


def downgrade() -> None:
    with op.batch_alter_table("flag_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_requests_project_id"))
    op.drop_table("flag_requests")
    with op.batch_alter_table("freezes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_freezes_project_id"))
    op.drop_table("freezes")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        for column in ("environments", "projects", "emails"):
            batch_op.drop_column(column)
