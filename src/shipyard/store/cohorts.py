"""SQLAlchemy implementation of the cohort metrics port: counts apps report per flag variant.

Both writes are single upserts (``INSERT ... ON CONFLICT``, which SQLite and PostgreSQL share),
so concurrent reports of the same variant never race on an insert, and a retried batch is
recognised by its id without reading first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shipyard.domain.releases import Project
from shipyard.ports.repositories import CohortCount
from shipyard.store.tables import CohortBatchRow, CohortCounterRow


class SqlCohorts:
    def __init__(self, session: Session) -> None:
        self._s = session
        dialect = session.get_bind().dialect.name
        self._insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def add_batch(
        self,
        project: Project,
        environment: str,
        batch_id: str,
        counts: Sequence[CohortCount],
        now: datetime,
    ) -> bool:
        added = self._s.execute(
            self._insert(CohortBatchRow)
            .values(
                project_id=project.id,
                environment=environment,
                batch_id=batch_id,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["project_id", "environment", "batch_id"])
            .returning(CohortBatchRow.id)
        ).first()
        if added is None:  # the batch was counted before (RETURNING is empty on a conflict)
            return False
        for c in counts:
            if c.count <= 0:
                continue
            stmt = self._insert(CohortCounterRow).values(
                project_id=project.id,
                environment=environment,
                flag=c.flag,
                variant=c.variant,
                metric=c.metric,
                count=c.count,
                updated_at=now,
            )
            self._s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["project_id", "environment", "flag", "variant", "metric"],
                    set_={"count": CohortCounterRow.count + stmt.excluded.count, "updated_at": now},
                )
            )
        return True

    def totals(self, project: Project, environment: str, flag: str) -> dict[str, dict[str, int]]:
        rows = self._s.execute(
            select(CohortCounterRow.variant, CohortCounterRow.metric, CohortCounterRow.count).where(
                CohortCounterRow.project_id == project.id,
                CohortCounterRow.environment == environment,
                CohortCounterRow.flag == flag,
            )
        )
        out: dict[str, dict[str, int]] = {}
        for variant, metric, count in rows:
            out.setdefault(variant, {})[metric] = int(count)
        return out
