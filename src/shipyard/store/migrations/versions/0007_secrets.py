"""secrets: one sealed value per project environment and name

Only ciphertext is stored (AES-GCM, the key in a file outside the database); who set it and
when are kept beside it so `secret list` can say so without opening anything.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.store.tables

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("set_by", sa.String(255), nullable=False),
        sa.Column("set_at", shipyard.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "environment", "name"),
    )
    op.create_index("ix_secrets_project_id", "secrets", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_secrets_project_id", table_name="secrets")
    op.drop_table("secrets")
