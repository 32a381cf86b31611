"""Flag change requests of protected environments: list, approve, reject.

The flag routes answer ``202 Accepted`` with a request (``as_answer``) where a protected
environment makes a change wait for a second person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from shipyard.api.deps import Me, Svc
from shipyard.ports.repositories import FlagRecord, FlagRequest
from shipyard.services import flag_requests

router = APIRouter(prefix="/api/v1", tags=["flags"])


class FlagRequestOut(BaseModel):
    request: int
    project: str
    environment: str
    key: str
    kind: str
    state: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    approvals: list[str]
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None

    @classmethod
    def of(cls, r: FlagRequest) -> FlagRequestOut:
        return cls(
            request=r.id,
            project=r.project,
            environment=r.environment,
            key=r.key,
            kind=r.kind,
            state=r.state.value,
            before=r.before,
            after=r.after,
            approvals=list(r.approvals),
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
        )


def pending(result: FlagRecord | FlagRequest, response: Response) -> FlagRequestOut | None:
    """The 202 answer when a change waits for approval; None when it was applied."""
    if isinstance(result, FlagRequest):
        response.status_code = 202
        return FlagRequestOut.of(result)
    return None


_ID = Path(ge=1, le=2**31 - 1)


@router.get("/projects/{project}/environments/{environment}/flag-requests")
def list_requests(
    project: str, environment: str, svc: Svc, me: Me, all: bool = False
) -> list[FlagRequestOut]:
    found = flag_requests.list_requests(svc, me, project, environment, pending_only=not all)
    return [FlagRequestOut.of(r) for r in found]


@router.post("/flag-requests/{request_id}/approve")
def approve(svc: Svc, me: Me, request_id: int = _ID) -> FlagRequestOut:
    return FlagRequestOut.of(flag_requests.approve(svc, me, request_id))


@router.post("/flag-requests/{request_id}/reject")
def reject(svc: Svc, me: Me, request_id: int = _ID) -> FlagRequestOut:
    return FlagRequestOut.of(flag_requests.reject(svc, me, request_id))
