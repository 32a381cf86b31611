"""Idempotency keys: one row per (caller, key), holding the first request's response."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shipyard.ports.repositories import StoredRequest
from shipyard.store.tables import IdempotencyKeyRow


class SqlIdempotency:
    def __init__(self, session: Session) -> None:
        self._s = session

    def _row(self, actor: str, key: str) -> IdempotencyKeyRow | None:
        return self._s.scalar(
            select(IdempotencyKeyRow).where(
                IdempotencyKeyRow.actor == actor, IdempotencyKeyRow.key == key
            )
        )

    def get(self, actor: str, key: str) -> StoredRequest | None:
        row = self._row(actor, key)
        if row is None:
            return None
        return StoredRequest(
            row.route, row.request_hash, row.status, row.content_type, row.response, row.created_at
        )

    def start(self, actor: str, key: str, *, route: str, request_hash: str, now: datetime) -> None:
        self._s.execute(
            delete(IdempotencyKeyRow).where(
                IdempotencyKeyRow.actor == actor, IdempotencyKeyRow.key == key
            )
        )
        self._s.add(
            IdempotencyKeyRow(
                actor=actor,
                key=key,
                route=route,
                request_hash=request_hash,
                status=None,
                content_type="",
                response="",
                created_at=now,
            )
        )
        self._s.flush()

    def finish(
        self, actor: str, key: str, *, status: int, content_type: str, response: str
    ) -> None:
        row = self._row(actor, key)
        if row is not None:
            row.status, row.content_type, row.response = status, content_type, response

    def forget(self, actor: str, key: str) -> None:
        self._s.execute(
            delete(IdempotencyKeyRow).where(
                IdempotencyKeyRow.actor == actor, IdempotencyKeyRow.key == key
            )
        )

    def expire(self, before: datetime) -> int:
        res = self._s.execute(
            delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created_at < before)
        )
        return int(getattr(res, "rowcount", 0) or 0)
