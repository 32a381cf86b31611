"""Request and response bodies of the HTTP API (they are the OpenAPI contract at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shipyard.api.bounds import MAX_ITEMS, Name, Source
from shipyard.domain.changelog import ChangelogEntry
from shipyard.domain.events import Event
from shipyard.domain.releases import Candidate, Project, Release
from shipyard.ports.routers import RoutePlan


class FieldProblem(BaseModel):
    field: str = Field(description="dotted path of the field ('' for the whole body)")
    in_: str = Field(alias="in", description="body, path, query or header")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, with Shipyard's stable ``code`` to branch on."""

    type: str = Field(description="a URI naming the kind of problem")
    title: str
    status: int
    detail: str = Field(description="one line for a person")
    code: str = Field(description="stable machine-readable code (see shipyard.errors.ErrorCode)")
    hint: str | None = Field(None, description="what to do about it")
    details: dict[str, Any] | None = Field(None, description="structured facts, e.g. file and line")
    errors: list[FieldProblem] | None = Field(None, description="every invalid field (422)")


class ProjectIn(BaseModel):
    source: Source = Field(description="absolute path of a git repository on the server, or a URL")
    name: Name | None = None


class ProjectOut(BaseModel):
    name: str
    source: str
    mainline: str
    created_at: datetime

    @classmethod
    def of(cls, p: Project) -> ProjectOut:
        return cls(name=p.name, source=p.source, mainline=p.mainline, created_at=p.created_at)


class CutIn(BaseModel):
    sha: Name | None = Field(None, description="mainline commit; default: the mainline tip")
    version: Name | None = None
    bump: Literal["major", "minor", "patch"] | None = None
    allow_missing_pick: bool = False


class PickIn(BaseModel):
    shas: list[Name] = Field(min_length=1, max_length=MAX_ITEMS)


class ArtifactIn(BaseModel):
    name: Name
    digest: Name
    uri: Source | None = None


class ArtifactOut(BaseModel):
    name: str
    digest: str
    size: int | None
    uri: str | None


class PickOut(BaseModel):
    source_sha: str
    new_sha: str


class VetoOut(BaseModel):
    by: str
    at: datetime
    reason: str


class CandidateOut(BaseModel):
    name: str
    number: int
    sha: str
    status: str  # the build status, or "vetoed" (which wins)
    build_status: str
    deployable: bool
    veto: VetoOut | None
    created_by: str
    created_at: datetime
    built_at: datetime | None
    build_log: str | None
    reason: str
    artifacts: list[ArtifactOut]
    picks: list[PickOut]

    @classmethod
    def of(cls, c: Candidate) -> CandidateOut:
        return cls(
            name=c.name,
            number=c.number,
            sha=c.sha,
            status=c.shown_status,
            build_status=c.status.value,
            deployable=c.deployable,
            veto=VetoOut(by=c.veto.by, at=c.veto.at, reason=c.veto.reason) if c.veto else None,
            created_by=c.created_by,
            created_at=c.created_at,
            built_at=c.built_at,
            build_log=c.build_log,
            reason=c.reason,
            artifacts=[
                ArtifactOut(name=a.name, digest=a.digest, size=a.size, uri=a.uri)
                for a in c.artifacts
            ],
            picks=[PickOut(source_sha=p.source_sha, new_sha=p.new_sha) for p in c.picks],
        )


class ReleaseOut(BaseModel):
    project: str
    version: str
    branch: str
    base_sha: str
    created_by: str
    created_at: datetime
    candidates: list[CandidateOut]

    @classmethod
    def of(cls, project: str, r: Release, candidates: list[Candidate]) -> ReleaseOut:
        return cls(
            project=project,
            version=r.version,
            branch=r.branch,
            base_sha=r.base_sha,
            created_by=r.created_by,
            created_at=r.created_at,
            candidates=[CandidateOut.of(c) for c in candidates],
        )


class ChangelogEntryOut(BaseModel):
    sha: str
    subject: str
    author: str
    author_email: str
    pr: int | None
    type: str | None
    scope: str | None
    breaking: bool
    picked: bool

    @classmethod
    def of(cls, e: ChangelogEntry) -> ChangelogEntryOut:
        return cls(
            sha=e.sha,
            subject=e.subject,
            author=e.author,
            author_email=e.author_email,
            pr=e.pr,
            type=e.type,
            scope=e.scope,
            breaking=e.breaking,
            picked=e.picked,
        )


class ReleaseDetailOut(ReleaseOut):
    previous_version: str | None
    changelog: list[ChangelogEntryOut]
    changelog_truncated: bool


class TokenIn(BaseModel):
    user: Name
    role: Name
    emails: list[Name] = Field(default=[], max_length=20, description="the user's commit emails")
    projects: list[Name] = Field(default=[], max_length=20, description="empty: every project")
    environments: list[Name] = Field(
        default=[], max_length=20, description="empty: every environment"
    )


class TokenCreatedOut(BaseModel):
    id: int
    user: str
    role: str
    emails: list[str] = []
    projects: list[str] = []
    environments: list[str] = []
    token: str = Field(description="shown once; only its hash is stored")


class WhoAmIOut(BaseModel):
    user: str
    role: str
    emails: list[str] = []
    projects: list[str] = []
    environments: list[str] = []


class EventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    kind: str
    project: str | None
    subject: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, e: Event) -> EventOut:
        return cls(
            id=e.id,
            at=e.at,
            actor=e.actor,
            kind=e.kind,
            project=e.project,
            subject=e.subject,
            payload=e.payload,
        )


class RoutingOut(BaseModel):
    """What the router serves now, read back from the router itself."""

    stable: str | None
    canary: str | None
    canary_weight: float = Field(description="percent of the requests no segment matches")
    segment: str | None = Field(None, description="requests that match go to the canary")
    mirror_percent: float
    addresses: dict[str, list[str]] = Field(description="per candidate, where the router sends")

    @classmethod
    def of(cls, plan: RoutePlan | None) -> RoutingOut | None:
        if plan is None:
            return None
        seg = plan.segment
        segment = None
        if seg is not None:
            what = f"{seg.kind} {seg.name}".strip()
            match = f" ~ {seg.regex}" if seg.regex else (f" = {seg.value}" if seg.value else "")
            segment = ("not " if seg.negate else "") + what + match
        backends = [b for b in (plan.stable, plan.canary) if b is not None]
        return cls(
            stable=plan.stable.candidate if plan.stable else None,
            canary=plan.canary.candidate if plan.canary else None,
            canary_weight=plan.canary_weight if plan.canary else 0.0,
            segment=segment,
            mirror_percent=plan.mirror_percent,
            addresses={b.candidate: list(b.addresses) for b in backends},
        )
