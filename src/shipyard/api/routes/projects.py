"""Projects and the releases of each."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from shipyard.api.bounds import Offset
from shipyard.api.deps import Me, Svc
from shipyard.api.schemas import (
    ArtifactIn,
    CandidateOut,
    ChangelogEntryOut,
    CutIn,
    PickIn,
    ProjectIn,
    ProjectOut,
    ReleaseDetailOut,
    ReleaseOut,
)
from shipyard.domain.versions import Bump
from shipyard.errors import NotFoundError
from shipyard.services import artifacts, projects, releases

router = APIRouter(prefix="/api/v1/projects", tags=["releases"])


@router.post("", status_code=201)
def add_project(body: ProjectIn, svc: Svc, me: Me) -> ProjectOut:
    return ProjectOut.of(projects.add_project(svc, me, body.source, name=body.name))


@router.get("")
def list_projects(svc: Svc, me: Me) -> list[ProjectOut]:
    return [ProjectOut.of(p) for p in projects.list_projects(svc, me)]


@router.get("/{project}")
def show_project(project: str, svc: Svc, me: Me) -> ProjectOut:
    return ProjectOut.of(projects.show_project(svc, me, project))


@router.post("/{project}/releases", status_code=201)
def cut_release(project: str, body: CutIn, svc: Svc, me: Me) -> ReleaseOut:
    release, candidate = releases.cut_release(
        svc,
        me,
        project,
        sha=body.sha,
        version=body.version,
        bump=Bump(body.bump) if body.bump else None,
        allow_missing_pick=body.allow_missing_pick,
    )
    return ReleaseOut.of(project, release, [candidate])


@router.get("/{project}/releases")
def list_releases(project: str, svc: Svc, me: Me) -> list[ReleaseOut]:
    proj, rows = releases.list_releases(svc, me, project)
    return [ReleaseOut.of(proj.name, r, list(cs)) for r, cs in rows]


@router.get("/{project}/releases/{version}")
def show_release(project: str, version: str, svc: Svc, me: Me) -> ReleaseDetailOut:
    view = releases.show_release(svc, me, project, version)
    base = ReleaseOut.of(project, view.release, list(view.candidates))
    return ReleaseDetailOut(
        **base.model_dump(),
        previous_version=view.previous_version,
        changelog=[ChangelogEntryOut.of(e) for e in view.changelog],
        changelog_truncated=view.changelog_truncated,
    )


@router.post("/{project}/releases/{version}/picks", status_code=201)
def pick(project: str, version: str, body: PickIn, svc: Svc, me: Me) -> CandidateOut:
    return CandidateOut.of(releases.pick(svc, me, project, version, body.shas))


@router.get("/{project}/candidates/{candidate}")
def show_candidate(project: str, candidate: str, svc: Svc, me: Me) -> CandidateOut:
    return CandidateOut.of(artifacts.get_candidate(svc, me, project, candidate))


@router.get("/{project}/candidates/{candidate}/log", response_class=PlainTextResponse)
def build_log(
    project: str, candidate: str, svc: Svc, me: Me, offset: Offset = 0
) -> PlainTextResponse:
    found = artifacts.get_candidate(svc, me, project, candidate)
    if not found.build_log:
        raise NotFoundError(f"{candidate} has no build log (it is not built by Shipyard)")
    try:
        with open(found.build_log, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        data = b""
    return PlainTextResponse(data.decode(errors="replace"))


@router.post("/{project}/candidates/{candidate}/artifacts", status_code=201)
def register_artifact(
    project: str, candidate: str, body: ArtifactIn, svc: Svc, me: Me
) -> CandidateOut:
    return CandidateOut.of(
        artifacts.register_artifact(
            svc, me, project, candidate, name=body.name, digest=body.digest, uri=body.uri
        )
    )
