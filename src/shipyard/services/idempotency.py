"""Idempotency keys: a POST retried with the same ``Idempotency-Key`` is answered, not redone.

The key lives in the database (any replica honors it), scoped to the caller's credential. The
first request claims it in its own transaction; a retry of the same request gets the stored
response; the same key on a different request is refused; a request still running is refused as
busy. Keys expire after ``TTL``; one whose request never finished (its server died) may be
claimed again after ``STALE``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shipyard.errors import ConflictError
from shipyard.ports.repositories import StoredRequest
from shipyard.services.context import Services

TTL = timedelta(hours=24)
STALE = timedelta(minutes=5)
MAX_STORED = 1 << 20  # a larger response is not kept (and so not replayed)


@dataclass(frozen=True, slots=True)
class Proceed:
    """The key is new: run the request, then ``finish`` or ``forget`` it."""


@dataclass(frozen=True, slots=True)
class Replay:
    stored: StoredRequest


@dataclass(frozen=True, slots=True)
class Busy:
    """The first request with this key is still running."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used for another request (route or body)."""

    route: str


Claim = Proceed | Replay | Busy | Mismatch


def claim(svc: Services, actor: str, key: str, *, route: str, request_hash: str) -> Claim:
    now = svc.clock.now()
    try:
        with svc.uow() as uow:
            uow.idempotency.expire(now - TTL)
            found = uow.idempotency.get(actor, key)
            abandoned = (
                found is not None and found.status is None and now - found.created_at > STALE
            )
            if found is not None and not abandoned:
                uow.commit()
                if (found.route, found.request_hash) != (route, request_hash):
                    return Mismatch(found.route)
                return Busy() if found.status is None else Replay(found)
            uow.idempotency.start(actor, key, route=route, request_hash=request_hash, now=now)
            uow.commit()
    except ConflictError:  # a concurrent request claimed the key first (PostgreSQL)
        return Busy()
    return Proceed()


def finish(
    svc: Services, actor: str, key: str, *, status: int, content_type: str, body: bytes
) -> None:
    """Keep the response for retries; a server error or an unstorable body frees the key."""
    text = _text(body)
    with svc.uow() as uow:
        if status >= 500 or text is None:
            uow.idempotency.forget(actor, key)
        else:
            uow.idempotency.finish(
                actor, key, status=status, content_type=content_type, response=text
            )
        uow.commit()


def forget(svc: Services, actor: str, key: str) -> None:
    with svc.uow() as uow:
        uow.idempotency.forget(actor, key)
        uow.commit()


def _text(body: bytes) -> str | None:
    if len(body) > MAX_STORED:
        return None
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None
