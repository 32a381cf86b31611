"""Dashboard sessions in the database, so logging out and revoking a token end them at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shipyard.store.tables import SessionRow, TokenRow


class SqlSessions:
    def __init__(self, session: Session) -> None:
        self._s = session

    def add(self, *, id_hash: str, token_id: int, now: datetime, expires_at: datetime) -> None:
        self._s.add(
            SessionRow(id_hash=id_hash, token_id=token_id, created_at=now, expires_at=expires_at)
        )
        self._s.flush()

    def token_hash(self, id_hash: str, now: datetime) -> str | None:
        return self._s.scalar(
            select(TokenRow.token_hash)
            .join(SessionRow, SessionRow.token_id == TokenRow.id)
            .where(
                SessionRow.id_hash == id_hash,
                SessionRow.revoked_at.is_(None),
                SessionRow.expires_at > now,
                TokenRow.revoked_at.is_(None),
            )
        )

    def revoke(self, id_hash: str, now: datetime) -> int | None:
        row = self._s.scalar(
            select(SessionRow).where(SessionRow.id_hash == id_hash, SessionRow.revoked_at.is_(None))
        )
        if row is None:
            return None
        row.revoked_at = now
        self._s.flush()
        return row.token_id

    def revoke_for_token(self, token_id: int, now: datetime) -> int:
        done = self._s.execute(
            update(SessionRow)
            .where(SessionRow.token_id == token_id, SessionRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(getattr(done, "rowcount", 0) or 0)
