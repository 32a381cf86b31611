"""The audit chain: heads to anchor elsewhere, and a verification of every seal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from shipyard.api.deps import Me, Svc
from shipyard.domain.audit import Head
from shipyard.services import audit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class HeadOut(BaseModel):
    project: str | None = Field(description="null: the chain of events that name no project")
    seq: int = Field(description="how many rows the chain holds")
    hash: str = Field(description="the seal of its newest row: what to anchor elsewhere")

    @classmethod
    def of(cls, h: Head) -> HeadOut:
        return cls(project=h.project, seq=h.seq, hash=h.hash)


class HeadsOut(BaseModel):
    heads: list[HeadOut]


class VerifiedOut(BaseModel):
    ok: bool
    rows: int = Field(description="sealed rows checked")
    chains: list[HeadOut] = Field(description="each chain checked, ending where it was verified")


@router.get("/head")
def heads(svc: Svc, me: Me) -> HeadsOut:
    """Every chain's newest hash (one per project, one for project-less events)."""
    return HeadsOut(heads=[HeadOut.of(h) for h in audit.heads(svc, me)])


@router.get("/head/{project}")
def head(project: Annotated[str, Path(max_length=100)], svc: Svc, me: Me) -> HeadOut:
    return HeadOut.of(audit.head(svc, me, project))


@router.get("/verify", responses={409: {"description": "the log was changed: the first break"}})
def verify(
    svc: Svc,
    me: Me,
    project: str | None = Query(None, max_length=100),
    anchor: str | None = Query(None, max_length=64, description="a hash the log must reach"),
) -> VerifiedOut:
    """Recompute every seal; 409 ``integrity`` names the first row that does not match."""
    report = audit.verify(svc, me, project=project, anchor=anchor)
    chains = [HeadOut(project=c.chain or None, seq=c.length, hash=c.last) for c in report.checks]
    return VerifiedOut(ok=True, rows=report.rows, chains=chains)
