"""Dashboard sessions: a browser logs in with a token once, then holds only a session id.

The cookie never carries the token: a stolen cookie dies with the session (logout, expiry,
or the token's revocation), and the token itself never sits in the browser's cookie jar.
Only the SHA-256 of a session id is stored, as for tokens.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from shipyard.domain.auth import Actor
from shipyard.errors import AuthError
from shipyard.services import tokens
from shipyard.services.context import Services

PREFIX = "shs_"
DEFAULT_TTL = timedelta(hours=12)  # a working day; log in again after it


def open_session(svc: Services, token: str, ttl: timedelta = DEFAULT_TTL) -> tuple[str, Actor]:
    """Check ``token`` and start a session for it: the new session id (shown once) and who."""
    if not token:
        raise AuthError("no API token given")
    session_id = PREFIX + secrets.token_urlsafe(32)
    with svc.uow() as uow:
        found = uow.tokens.find(tokens.hash_token(token))
        if found is None:
            raise AuthError("unknown or revoked API token")
        token_id, user, role = found
        now = svc.clock.now()
        uow.sessions.add(
            id_hash=tokens.hash_token(session_id), token_id=token_id, now=now, expires_at=now + ttl
        )
        uow.events.append(
            actor=user,
            kind="session.started",
            subject=f"token {token_id}",
            now=now,
            payload={"token": token_id, "expires_at": (now + ttl).isoformat()},
        )
        uow.commit()
    return session_id, Actor(user, role)


def authenticate(svc: Services, session_id: str | None) -> Actor:
    """Who holds this session; AuthError when it is unknown, ended, expired or its token revoked."""
    if not session_id:
        raise AuthError("please log in with an API token")
    with svc.uow() as uow:
        token_hash = uow.sessions.token_hash(tokens.hash_token(session_id), svc.clock.now())
        found = uow.tokens.find(token_hash) if token_hash else None
    if found is None:
        raise AuthError("your session ended: please log in again")
    _, user, role = found
    return Actor(user, role)


def close_session(svc: Services, actor: Actor, session_id: str) -> None:
    """Log out: the session id stops working at once, on every replica."""
    with svc.uow() as uow:
        now = svc.clock.now()
        token_id = uow.sessions.revoke(tokens.hash_token(session_id), now)
        if token_id is None:
            return
        uow.events.append(
            actor=actor.user,
            kind="session.ended",
            subject=f"token {token_id}",
            now=now,
            payload={"token": token_id},
        )
        uow.commit()
