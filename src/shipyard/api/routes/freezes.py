"""Server-side freezes of an environment (``shipyard freeze add | list | end``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from shipyard.api.bounds import Clean
from shipyard.api.deps import Me, Svc
from shipyard.ports.repositories import ServerFreeze
from shipyard.services import freezes

router = APIRouter(prefix="/api/v1", tags=["freezes"])


class FreezeIn(BaseModel):
    reason: Annotated[str, Clean] = Field(
        max_length=500, description="why: shown to whoever the freeze stops"
    )
    duration: Annotated[str, Clean] | None = Field(
        None, max_length=40, description="from now: 2h, 1h30m, 3d"
    )
    until: datetime | None = Field(None, description="an end time with its UTC offset")


class FreezeOut(BaseModel):
    id: int
    project: str
    environment: str
    start: datetime
    end: datetime
    reason: str
    created_by: str
    ended_at: datetime | None
    ended_by: str | None

    @classmethod
    def of(cls, f: ServerFreeze) -> FreezeOut:
        return cls(
            id=f.id,
            project=f.project,
            environment=f.environment,
            start=f.start,
            end=f.end,
            reason=f.reason,
            created_by=f.created_by,
            ended_at=f.ended_at,
            ended_by=f.ended_by,
        )


@router.post("/projects/{project}/environments/{environment}/freezes", status_code=201)
def add_freeze(project: str, environment: str, body: FreezeIn, svc: Svc, me: Me) -> FreezeOut:
    return FreezeOut.of(
        freezes.add_freeze(
            svc,
            me,
            project,
            environment,
            reason=body.reason,
            duration=body.duration,
            until=body.until,
        )
    )


@router.get("/freezes")
def list_freezes(
    svc: Svc,
    me: Me,
    project: str | None = Query(None, max_length=100),
    environment: str | None = Query(None, max_length=100),
) -> list[FreezeOut]:
    return [FreezeOut.of(f) for f in freezes.list_freezes(svc, me, project, environment)]


@router.post("/freezes/{freeze_id}/end")
def end_freeze(svc: Svc, me: Me, freeze_id: int = Path(ge=1, le=2**31 - 1)) -> FreezeOut:
    return FreezeOut.of(freezes.end_freeze(svc, me, freeze_id))
