"""a failed deployment's cause as a code, so clients can act on it (exit 7 on a digest mismatch,
10 when its rollout rolled back, 9 for any other failure)

Revision ID: 0013
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(
            sa.Column("failure_code", sa.String(40), nullable=False, server_default="")
        )
    # deployments that failed before this column existed: a rolled-back rollout said so in its text
    op.execute(
        "UPDATE deployments SET failure_code = CASE WHEN outcome LIKE 'rolled back:%' "
        "THEN 'rolled_back' ELSE 'deployment_failed' END WHERE state = 'failed'"
    )


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("failure_code")
