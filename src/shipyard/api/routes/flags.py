"""Feature flags of one project environment, and the state document apps poll with ETags."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from shipyard.api.bounds import MAX_ITEMS, Json, Name, Text
from shipyard.api.deps import Me, Svc
from shipyard.api.routes.flag_requests import FlagRequestOut, pending
from shipyard.ports.repositories import FlagChangeRecord, FlagRecord, FlagRequest
from shipyard.services import cohorts, flags

router = APIRouter(prefix="/api/v1/projects/{project}/environments/{environment}", tags=["flags"])


class FlagCreateIn(BaseModel):
    key: Name
    description: Text = ""
    enabled: bool = False
    rollout: float | None = Field(
        None, ge=0, le=100, description="percent of users (sub-percent allowed, e.g. 0.1)"
    )
    stickiness: Name = "default"
    group_id: Name | None = None
    definition: Json | None = Field(
        None, description="a full Unleash feature definition; replaces the fields above"
    )


class FlagPatchIn(BaseModel):
    enabled: bool | None = None
    description: Text | None = None


class RolloutIn(BaseModel):
    percent: float = Field(ge=0, le=100)
    stickiness: Name | None = None
    group_id: Name | None = None


class SegmentsIn(BaseModel):
    segments: list[Json] = Field(max_length=MAX_ITEMS)


class FlagOut(BaseModel):
    project: str
    environment: str
    key: str
    description: str
    enabled: bool
    rollout: float | None = Field(description="percent of the flexibleRollout strategy, if any")
    version: int
    definition: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime

    @classmethod
    def of(cls, f: FlagRecord) -> FlagOut:
        return cls(
            project=f.project,
            environment=f.environment,
            key=f.key,
            description=f.description,
            enabled=bool(f.definition.get("enabled")),
            rollout=flags.rollout_of(f.definition),
            version=f.version,
            definition=f.definition,
            created_by=f.created_by,
            created_at=f.created_at,
            updated_by=f.updated_by,
            updated_at=f.updated_at,
        )


class FlagChangeOut(BaseModel):
    id: int
    revision: int
    kind: str
    actor: str
    at: datetime
    summary: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, c: FlagChangeRecord) -> FlagChangeOut:
        return cls(
            id=c.id,
            revision=c.revision,
            kind=c.kind,
            actor=c.actor,
            at=c.at,
            summary=flags.summarize(c.before, c.after),
            before=c.before,
            after=c.after,
        )


class FlagListOut(BaseModel):
    project: str
    environment: str
    revision: int
    flags: list[FlagOut]


class FlagDetailOut(FlagOut):
    revision: int = Field(description="the environment's state revision (its ETag)")
    history: list[FlagChangeOut] = Field(description="newest first")


def _etag(revision: int) -> str:
    return f'"{revision}"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get("/flags")
def list_flags(project: str, environment: str, svc: Svc, me: Me) -> FlagListOut:
    revision, found = flags.list_flags(svc, me, project, environment)
    return FlagListOut(
        project=project,
        environment=environment,
        revision=revision,
        flags=[FlagOut.of(f) for f in found],
    )


WAITS: dict[int | str, dict[str, Any]] = {
    202: {"model": FlagRequestOut, "description": "protected environment: a change request waits"}
}


def _answer(result: FlagRecord | FlagRequest, response: Response) -> FlagOut | FlagRequestOut:
    """The flag, or 202 with the request when a protected environment makes the change wait."""
    waiting = pending(result, response)
    if waiting is not None:
        return waiting
    assert isinstance(result, FlagRecord)
    return FlagOut.of(result)


@router.post("/flags", status_code=201, responses=WAITS)
def create_flag(
    project: str, environment: str, body: FlagCreateIn, svc: Svc, me: Me, response: Response
) -> FlagOut | FlagRequestOut:
    return _answer(
        flags.create_flag(
            svc,
            me,
            project,
            environment,
            body.key,
            description=body.description,
            enabled=body.enabled,
            rollout=body.rollout,
            stickiness=body.stickiness,
            group_id=body.group_id,
            definition=body.definition,
        ),
        response,
    )


@router.get(
    "/flags/state",
    responses={
        200: {"description": 'client-features document; `ETag: "<revision>"`'},
        304: {"description": "If-None-Match matches: nothing changed"},
    },
)
def flag_state(
    project: str,
    environment: str,
    svc: Svc,
    me: Me,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The Unleash client-features document apps evaluate in-process; poll it with If-None-Match."""
    headers = {"Cache-Control": "no-cache"}
    if if_none_match:
        # the cheap path: one small query, no document built
        etag = _etag(flags.state_revision(svc, me, project, environment))
        if _matches(if_none_match, etag):
            return Response(status_code=304, headers=headers | {"ETag": etag})
    revision, doc = flags.state(svc, me, project, environment)
    return JSONResponse(doc, headers=headers | {"ETag": _etag(revision)})


KEEPALIVE_S = 15.0


@router.get(
    "/flags/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def flag_stream(
    project: str,
    environment: str,
    request: Request,
    svc: Svc,
    me: Me,
    last_event_id: Annotated[str | None, Header()] = None,
    interval: float = Query(1.0, ge=0.05, le=60, description="seconds between revision checks"),
) -> StreamingResponse:
    """Server-sent events: `event: state`, `id: <revision>`, `data: <document>` on each change.

    The first event is the current state (skipped when `Last-Event-ID` is already current);
    a comment line keeps idle connections open. Each check is the same one-row query as a 304.
    """
    await run_in_threadpool(flags.state_revision, svc, me, project, environment)  # 404/403 now

    async def events() -> AsyncIterator[str]:
        sent, idle = last_event_id, 0.0
        while not await request.is_disconnected():
            revision = await run_in_threadpool(flags.state_revision, svc, me, project, environment)
            if str(revision) != sent:
                revision, doc = await run_in_threadpool(flags.state, svc, me, project, environment)
                sent, idle = str(revision), 0.0
                data = json.dumps(doc, separators=(",", ":"))
                yield f"event: state\nid: {revision}\ndata: {data}\n\n"
            elif idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(interval)
            idle += interval

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class MetricsIn(BaseModel):
    batch_id: Name = Field(
        description="picked by the app once per batch and kept for its retries: counted once"
    )
    app_name: Name = ""
    flags: Json = Field(
        default_factory=dict,
        description='{flag: {variant: {"exposures": n, "outcomes": {"error": n, ...}}}}',
    )


class MetricsOut(BaseModel):
    batch_id: str
    duplicate: bool = Field(description="this batch was counted before; nothing was added")
    counted: int
    ignored: list[str] = Field(description="flags this environment does not have")


@router.post("/flags/metrics")
def report_metrics(project: str, environment: str, body: MetricsIn, svc: Svc, me: Me) -> MetricsOut:
    """Cohort counts an app's SDK saw since its last report (for ``router: flag`` rollouts)."""
    got = cohorts.report(svc, me, project, environment, body.batch_id, body.flags)
    return MetricsOut(
        batch_id=body.batch_id,
        duplicate=got.duplicate,
        counted=got.counted,
        ignored=list(got.ignored),
    )


@router.get("/flags/{key}/metrics")
def flag_metrics(
    project: str, environment: str, key: str, svc: Svc, me: Me
) -> dict[str, dict[str, int]]:
    """Cumulative counts per variant: ``{variant: {"exposures": n, "outcome.error": n}}``."""
    return cohorts.cohort_counters(svc, me, project, environment, key)


@router.put("/segments", responses=WAITS)
def set_segments(
    project: str, environment: str, body: SegmentsIn, svc: Svc, me: Me, response: Response
) -> dict[str, int] | FlagRequestOut:
    result = flags.set_segments(svc, me, project, environment, body.segments)
    if isinstance(result, FlagRequest):
        return pending(result, response) or FlagRequestOut.of(result)
    return {"revision": result}


@router.get("/flags/{key}")
def show_flag(
    project: str,
    environment: str,
    key: str,
    svc: Svc,
    me: Me,
    history: int = Query(20, ge=0, le=1000),
) -> FlagDetailOut:
    view = flags.show_flag(svc, me, project, environment, key, history=history)
    return FlagDetailOut(
        **FlagOut.of(view.flag).model_dump(),
        revision=view.revision,
        history=[FlagChangeOut.of(c) for c in view.changes],
    )


@router.get("/flags/{key}/history")
def flag_history(
    project: str,
    environment: str,
    key: str,
    svc: Svc,
    me: Me,
    limit: int = Query(100, ge=1, le=1000),
) -> list[FlagChangeOut]:
    view = flags.show_flag(svc, me, project, environment, key, history=limit)
    return [FlagChangeOut.of(c) for c in view.changes]


@router.put("/flags/{key}", responses=WAITS)
def replace_flag(
    project: str,
    environment: str,
    key: str,
    body: Json,
    svc: Svc,
    me: Me,
    response: Response,
) -> FlagOut | FlagRequestOut:
    """Replace the definition with a full Unleash feature JSON (checked before it is stored)."""
    return _answer(flags.set_flag(svc, me, project, environment, key, definition=body), response)


@router.patch("/flags/{key}", responses=WAITS)
def patch_flag(
    project: str,
    environment: str,
    key: str,
    body: FlagPatchIn,
    svc: Svc,
    me: Me,
    response: Response,
) -> FlagOut | FlagRequestOut:
    return _answer(
        flags.set_flag(
            svc,
            me,
            project,
            environment,
            key,
            enabled=body.enabled,
            description=body.description,
        ),
        response,
    )


@router.post("/flags/{key}/rollout", responses=WAITS)
def rollout(
    project: str,
    environment: str,
    key: str,
    body: RolloutIn,
    svc: Svc,
    me: Me,
    response: Response,
) -> FlagOut | FlagRequestOut:
    return _answer(
        flags.rollout(
            svc,
            me,
            project,
            environment,
            key,
            body.percent,
            stickiness=body.stickiness,
            group_id=body.group_id,
        ),
        response,
    )


@router.post("/flags/{key}/kill")
def kill(project: str, environment: str, key: str, svc: Svc, me: Me) -> FlagOut:
    """The kill switch: off for everyone at the apps' next poll."""
    return FlagOut.of(flags.kill(svc, me, project, environment, key))
