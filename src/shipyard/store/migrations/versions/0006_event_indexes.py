"""event indexes for reading the audit log newest first by project and kind

The single-column indexes on ``project`` and ``kind`` make PostgreSQL fetch and sort every
matching event to show the newest page. With ``id`` as the second column the page is read by
walking the index backwards from the cursor. ``(project, kind)`` serves the distinct kinds of a
project. The new indexes cover what the old ones did, so those are dropped. Only indexes change:
the table (and its append-only triggers) is not rebuilt.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_project_id", "events", ["project", "id"])
    op.create_index("ix_events_kind_id", "events", ["kind", "id"])
    op.create_index("ix_events_project_kind", "events", ["project", "kind"])
    op.drop_index("ix_events_project", table_name="events")
    op.drop_index("ix_events_kind", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_index("ix_events_project", "events", ["project"])
    op.drop_index("ix_events_project_kind", table_name="events")
    op.drop_index("ix_events_kind_id", table_name="events")
    op.drop_index("ix_events_project_id", table_name="events")
