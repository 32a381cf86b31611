"""Sealed secrets per project environment: the store never sees a plaintext value."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, select
from sqlalchemy.orm import Session

from shipyard.domain.secrets import SecretInfo
from shipyard.store.tables import SecretRow


class SqlSecrets:
    def __init__(self, session: Session) -> None:
        self._s = session

    def _where(self, project_id: int, environment: str) -> ColumnElement[bool]:
        return and_(SecretRow.project_id == project_id, SecretRow.environment == environment)

    def put(
        self,
        project_id: int,
        environment: str,
        name: str,
        sealed: bytes,
        *,
        actor: str,
        now: datetime,
    ) -> bool:
        """True when the secret is new, False when an existing value was replaced."""
        row = self._s.scalar(
            select(SecretRow)
            .where(self._where(project_id, environment), SecretRow.name == name)
            .with_for_update()
        )
        if row is None:
            self._s.add(
                SecretRow(
                    project_id=project_id,
                    environment=environment,
                    name=name,
                    sealed=sealed,
                    set_by=actor,
                    set_at=now,
                )
            )
            self._s.flush()
            return True
        row.sealed, row.set_by, row.set_at = sealed, actor, now
        self._s.flush()
        return False

    def list(self, project_id: int, environment: str) -> Sequence[SecretInfo]:
        rows = self._s.execute(
            select(SecretRow.name, SecretRow.set_by, SecretRow.set_at)
            .where(self._where(project_id, environment))
            .order_by(SecretRow.name)
        )
        return [SecretInfo(name, by, at) for name, by, at in rows]

    def sealed(self, project_id: int, environment: str) -> dict[str, bytes]:
        rows = self._s.execute(
            select(SecretRow.name, SecretRow.sealed).where(self._where(project_id, environment))
        )
        return {name: bytes(blob) for name, blob in rows}

    def remove(self, project_id: int, environment: str, name: str) -> bool:
        done = self._s.execute(
            delete(SecretRow).where(self._where(project_id, environment), SecretRow.name == name)
        )
        return bool(getattr(done, "rowcount", 0))
