"""Flag change requests of protected environments: rows to FlagRequest records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.domain.releases import Project
from shipyard.ports.repositories import FlagRequest, FlagRequestState
from shipyard.store.tables import FlagRequestRow, ProjectRow


def _request(row: FlagRequestRow, project: str) -> FlagRequest:
    return FlagRequest(
        id=row.id,
        project=project,
        environment=row.environment,
        key=row.key,
        kind=row.kind,
        before=row.before,
        after=row.after,
        state=FlagRequestState(row.state),
        approvals=tuple(row.approvals or ()),
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


class SqlFlagRequests:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(
        self,
        project: Project,
        environment: str,
        key: str,
        *,
        kind: str,
        before: dict[str, Any] | None,
        after: dict[str, Any],
        by: str,
        now: datetime,
    ) -> FlagRequest:
        row = FlagRequestRow(
            project_id=project.id,
            environment=environment,
            key=key,
            kind=kind,
            before=before,
            after=after,
            state=FlagRequestState.PENDING.value,
            approvals=[],
            requested_by=by,
            requested_at=now,
        )
        self._s.add(row)
        self._s.flush()
        return _request(row, project.name)

    def lock(self, request_id: int) -> FlagRequest | None:
        found = self._s.execute(
            select(FlagRequestRow, ProjectRow.name)
            .join(ProjectRow, ProjectRow.id == FlagRequestRow.project_id)
            .where(FlagRequestRow.id == request_id)
            .with_for_update(of=FlagRequestRow)
        ).first()
        return _request(found[0], found[1]) if found else None

    def save(self, r: FlagRequest) -> None:
        row = self._s.get(FlagRequestRow, r.id)
        assert row is not None
        row.state = r.state.value
        row.approvals = list(r.approvals)
        row.decided_by = r.decided_by
        row.decided_at = r.decided_at
        self._s.flush()

    def list(
        self, project: Project, environment: str, *, pending_only: bool = True
    ) -> Sequence[FlagRequest]:
        query = select(FlagRequestRow).where(
            FlagRequestRow.project_id == project.id, FlagRequestRow.environment == environment
        )
        if pending_only:
            query = query.where(FlagRequestRow.state == FlagRequestState.PENDING.value)
        rows = self._s.scalars(query.order_by(FlagRequestRow.id.desc()).limit(500))
        return [_request(row, project.name) for row in rows]
