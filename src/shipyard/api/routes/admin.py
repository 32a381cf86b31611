"""Tokens, identity and the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from shipyard.api.bounds import MAX_ID, IdPath, Name
from shipyard.api.deps import Me, Svc
from shipyard.api.schemas import EventOut, TokenCreatedOut, TokenIn, WhoAmIOut
from shipyard.errors import InvalidError
from shipyard.services import events, tokens

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/whoami")
def whoami(me: Me) -> WhoAmIOut:
    return WhoAmIOut(
        user=me.user,
        role=me.role.value,
        emails=sorted(me.emails),
        projects=sorted(me.projects),
        environments=sorted(me.environments),
    )


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, svc: Svc, me: Me) -> TokenCreatedOut:
    token_id, token = tokens.create_token(
        svc,
        me,
        user=body.user,
        role=body.role,
        emails=body.emails,
        projects=body.projects,
        environments=body.environments,
    )
    return TokenCreatedOut(
        id=token_id,
        user=body.user.strip(),
        role=body.role,
        emails=[e.strip() for e in body.emails],
        projects=[p.strip() for p in body.projects],
        environments=[e.strip() for e in body.environments],
        token=token,
    )


@router.get("/tokens")
def list_tokens(svc: Svc, me: Me) -> list[dict[str, Any]]:
    return list(tokens.list_tokens(svc, me))


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: IdPath, svc: Svc, me: Me) -> None:
    tokens.revoke_token(svc, me, token_id)


@router.get("/events")
def list_events(
    svc: Svc,
    me: Me,
    project: Name | None = None,
    limit: int = Query(100, ge=1, le=1000),
    after: int = Query(0, ge=0, le=MAX_ID, description="oldest first, above this id"),
    before: int | None = Query(None, ge=1, le=MAX_ID, description="newest first, below this id"),
    newest: bool = Query(False, description="newest first, from the newest event"),
    kind: str | None = Query(
        None, max_length=100, description="a whole kind, or a prefix ending at a dot"
    ),
) -> list[EventOut]:
    """By default the log read forward from ``after`` (as it always was); ``before`` or
    ``newest`` read it backward, the way a person looks for what just happened."""
    kind = (kind or "").strip() or None
    if before is None and not newest:
        found = events.list_events(svc, me, project=project, limit=limit, after_id=after, kind=kind)
        return [EventOut.of(e) for e in found]
    if after:
        raise InvalidError("give either after (oldest first) or before (newest first), not both")
    page = events.newest_events(svc, me, project=project, kind=kind, before=before, limit=limit)
    return [EventOut.of(e) for e in page.events]
