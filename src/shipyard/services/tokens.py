"""API tokens: random secrets shown once, stored only as their SHA-256.

A token names a user (with the emails that user commits as), a role, and optionally the projects
and environments the role holds in. The last admin token that holds everywhere cannot be revoked;
an operator who lost every admin token mints one on the server's host (``shipyard admin token``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from shipyard.domain.auth import SYSTEM, Action, Actor, Role, parse_role
from shipyard.errors import AuthError, InvalidError, NotFoundError, RefusedError
from shipyard.ports.repositories import TokenGrant
from shipyard.services.context import Services
from shipyard.services.releases import get_project

PREFIX = "shy_"
RECOVERY_USER = "recovery-admin"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_MAX_LIST = 20


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is safe and lookups stay O(1)."""
    return hashlib.sha256(token.encode()).hexdigest()


def actor_of(grant: TokenGrant) -> Actor:
    return Actor(
        grant.user,
        grant.role,
        emails=grant.emails,
        projects=grant.projects,
        environments=grant.environments,
    )


def authenticate(svc: Services, token: str | None) -> Actor:
    if not token:
        raise AuthError(
            "no API token given", hint="set SHIPYARD_TOKEN or send Authorization: Bearer"
        )
    with svc.uow() as uow:
        found = uow.tokens.grant(hash_token(token))
    if found is None:
        raise AuthError("unknown or revoked API token")
    return actor_of(found)


def _mint(
    svc: Services,
    actor: Actor,
    user: str,
    role: Role,
    *,
    emails: Sequence[str] = (),
    projects: Sequence[str] = (),
    environments: Sequence[str] = (),
    kind: str = "token.created",
) -> tuple[int, str]:
    token = PREFIX + secrets.token_urlsafe(32)
    with svc.uow() as uow:
        for name in projects:
            get_project(uow, name)  # a misspelt project would grant nothing, silently
        now = svc.clock.now()
        token_id = uow.tokens.add(
            user=user,
            role=role,
            token_hash=hash_token(token),
            actor=actor.user,
            now=now,
            emails=emails,
            projects=projects,
            environments=environments,
        )
        uow.events.append(
            actor=actor.user,
            kind=kind,
            subject=f"token {token_id}",
            now=now,
            payload={
                "id": token_id,
                "user": user,
                "role": role.value,
                "emails": list(emails),
                "projects": list(projects),
                "environments": list(environments),
            },
        )
        uow.commit()
    return token_id, token


def _checked(values: Iterable[str], what: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        v = value.strip()
        if not pattern.fullmatch(v) or len(v) > 254:
            raise InvalidError(f"{what} {value!r} is not valid", details={what: value})
        if v.casefold() not in {o.casefold() for o in out}:
            out.append(v)
    if len(out) > _MAX_LIST:
        raise InvalidError(f"at most {_MAX_LIST} {what}s per token")
    return tuple(out)


def create_token(
    svc: Services,
    actor: Actor,
    *,
    user: str,
    role: str,
    emails: Iterable[str] = (),
    projects: Iterable[str] = (),
    environments: Iterable[str] = (),
) -> tuple[int, str]:
    """A token for ``user``; with ``projects`` / ``environments`` its role holds only there."""
    actor.require(Action.ADMINISTER)
    user = user.strip()
    if not user or len(user) > 255:
        raise InvalidError("a token needs a user name (1-255 characters)")
    parsed = parse_role(role)
    scope_projects = _checked(projects, "project", _NAME)
    scope_envs = _checked(environments, "environment", _NAME)
    if parsed is Role.ADMIN and (scope_projects or scope_envs):
        raise InvalidError(
            "an admin token cannot be scoped: administering (tokens, projects) holds everywhere",
            hint="scope a deployer or approver token instead",
        )
    return _mint(
        svc,
        actor,
        user,
        parsed,
        emails=_checked(emails, "email", _EMAIL),
        projects=scope_projects,
        environments=scope_envs,
    )


def bootstrap_admin(svc: Services) -> str | None:
    """On the very first start, mint an admin token so someone can log in; never again after."""
    with svc.uow() as uow:
        if uow.tokens.count() > 0:
            return None
    return _mint(svc, SYSTEM, "admin", Role.ADMIN)[1]


def recovery_admin(svc: Services, *, by: str) -> tuple[int, str]:
    """An admin token minted on the server's host, from the database directly, when every admin
    token is lost; audited as ``token.recovered`` with who ran it (``by``: the host's user)."""
    return _mint(svc, Actor(by, Role.ADMIN), RECOVERY_USER, Role.ADMIN, kind="token.recovered")


def list_tokens(svc: Services, actor: Actor) -> Sequence[dict[str, Any]]:
    actor.require(Action.ADMINISTER)
    with svc.uow() as uow:
        return uow.tokens.list()


def revoke_token(svc: Services, actor: Actor, token_id: int) -> None:
    """Revoke a token at once; never the last admin token that holds everywhere."""
    actor.require(Action.ADMINISTER)
    with svc.uow() as uow:
        now = svc.clock.now()
        admins = uow.tokens.global_admins()  # first: it locks them
        found = uow.tokens.get(token_id)
        if found is None:
            raise NotFoundError(f"token {token_id} not found or already revoked")
        if found.role is Role.ADMIN and admins <= 1:
            raise RefusedError(
                f"token {token_id} is the last admin token; revoking it would lock everyone out",
                hint="create another admin token first (shipyard token create --role admin)",
                details={"id": token_id},
            )
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
