"""API tokens: random secrets shown once, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

from shipyard.domain.auth import SYSTEM, Action, Actor, Role, parse_role
from shipyard.errors import AuthError, InvalidError, NotFoundError
from shipyard.services.context import Services

PREFIX = "shy_"


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is safe and lookups stay O(1)."""
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(svc: Services, token: str | None) -> Actor:
    if not token:
        raise AuthError(
            "no API token given", hint="set SHIPYARD_TOKEN or send Authorization: Bearer"
        )
    with svc.uow() as uow:
        found = uow.tokens.find(hash_token(token))
    if found is None:
        raise AuthError("unknown or revoked API token")
    _, user, role = found
    return Actor(user, role)


def _mint(svc: Services, actor: Actor, user: str, role: Role) -> tuple[int, str]:
    token = PREFIX + secrets.token_urlsafe(32)
    with svc.uow() as uow:
        now = svc.clock.now()
        token_id = uow.tokens.add(
            user=user, role=role, token_hash=hash_token(token), actor=actor.user, now=now
        )
        uow.events.append(
            actor=actor.user,
            kind="token.created",
            subject=f"token {token_id}",
            now=now,
            payload={"id": token_id, "user": user, "role": role.value},
        )
        uow.commit()
    return token_id, token


def create_token(svc: Services, actor: Actor, *, user: str, role: str) -> tuple[int, str]:
    actor.require(Action.ADMINISTER)
    user = user.strip()
    if not user or len(user) > 255:
        raise InvalidError("a token needs a user name (1-255 characters)")
    return _mint(svc, actor, user, parse_role(role))


def bootstrap_admin(svc: Services) -> str | None:
    """On the very first start, mint an admin token so someone can log in; never again after."""
    with svc.uow() as uow:
        if uow.tokens.count() > 0:
            return None
    return _mint(svc, SYSTEM, "admin", Role.ADMIN)[1]


def list_tokens(svc: Services, actor: Actor) -> Sequence[dict[str, Any]]:
    actor.require(Action.ADMINISTER)
    with svc.uow() as uow:
        return uow.tokens.list()


def revoke_token(svc: Services, actor: Actor, token_id: int) -> None:
    actor.require(Action.ADMINISTER)
    with svc.uow() as uow:
        now = svc.clock.now()
        if not uow.tokens.revoke(token_id, now):
            raise NotFoundError(f"token {token_id} not found or already revoked")
        uow.sessions.revoke_for_token(token_id, now)  # its dashboard sessions end with it
        uow.events.append(
            actor=actor.user,
            kind="token.revoked",
            subject=f"token {token_id}",
            now=now,
            payload={"id": token_id},
        )
        uow.commit()
