"""Tokens, identity and the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from shipyard.api.deps import Me, Svc
from shipyard.api.schemas import EventOut, TokenCreatedOut, TokenIn, WhoAmIOut
from shipyard.services import events, tokens

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/whoami")
def whoami(me: Me) -> WhoAmIOut:
    return WhoAmIOut(user=me.user, role=me.role.value)


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, svc: Svc, me: Me) -> TokenCreatedOut:
    token_id, token = tokens.create_token(svc, me, user=body.user, role=body.role)
    return TokenCreatedOut(id=token_id, user=body.user.strip(), role=body.role, token=token)


@router.get("/tokens")
def list_tokens(svc: Svc, me: Me) -> list[dict[str, Any]]:
    return list(tokens.list_tokens(svc, me))


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, svc: Svc, me: Me) -> None:
    tokens.revoke_token(svc, me, token_id)


@router.get("/events")
def list_events(
    svc: Svc,
    me: Me,
    project: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    after: int = Query(0, ge=0),
) -> list[EventOut]:
    return [
        EventOut.of(e)
        for e in events.list_events(svc, me, project=project, limit=limit, after_id=after)
    ]
