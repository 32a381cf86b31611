"""Server-side freezes (``shipyard freeze add``): rows to ServerFreeze records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.releases import Project
from shipyard.ports.repositories import ServerFreeze
from shipyard.store.tables import FreezeRow, ProjectRow


def _freeze(row: FreezeRow, project: str) -> ServerFreeze:
    return ServerFreeze(
        id=row.id,
        project=project,
        environment=row.environment,
        start=row.start,
        end=row.end,
        reason=row.reason,
        created_by=row.created_by,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
    )


class SqlFreezes:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(
        self,
        project: Project,
        environment: str,
        *,
        start: datetime,
        end: datetime,
        reason: str,
        by: str,
        now: datetime,
    ) -> ServerFreeze:
        row = FreezeRow(
            project_id=project.id,
            environment=environment,
            start=start,
            end=end,
            reason=reason,
            created_by=by,
            created_at=now,
        )
        self._s.add(row)
        self._s.flush()
        return _freeze(row, project.name)

    def _row(self, freeze_id: int) -> tuple[FreezeRow, str] | None:
        found = self._s.execute(
            select(FreezeRow, ProjectRow.name)
            .join(ProjectRow, ProjectRow.id == FreezeRow.project_id)
            .where(FreezeRow.id == freeze_id)
            .with_for_update(of=FreezeRow)
        ).first()
        return (found[0], found[1]) if found else None

    def get(self, freeze_id: int) -> ServerFreeze | None:
        found = self._row(freeze_id)
        return _freeze(*found) if found else None

    def end(self, freeze_id: int, *, by: str, now: datetime) -> ServerFreeze | None:
        found = self._row(freeze_id)
        if found is None or found[0].end <= now:
            return None
        row = found[0]
        row.end = max(now, row.start)
        row.ended_at = now
        row.ended_by = by
        self._s.flush()
        return _freeze(row, found[1])

    def list(
        self, project: Project | None = None, environment: str | None = None
    ) -> Sequence[ServerFreeze]:
        query = select(FreezeRow, ProjectRow.name).join(
            ProjectRow, ProjectRow.id == FreezeRow.project_id
        )
        if project is not None:
            query = query.where(FreezeRow.project_id == project.id)
            if environment is not None:
                query = query.where(FreezeRow.environment == environment)
        rows = self._s.execute(query.order_by(FreezeRow.id.desc()).limit(1000))
        return [_freeze(row, name) for row, name in rows]
