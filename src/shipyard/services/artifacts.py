"""Artifacts built elsewhere: external CI registers them by digest against a candidate."""

from __future__ import annotations

import re

from shipyard.domain.auth import Action, Actor
from shipyard.domain.releases import Artifact, Candidate, CandidateStatus
from shipyard.errors import ConflictError, ErrorCode, InvalidError, NotFoundError, RefusedError
from shipyard.services import deployments
from shipyard.services.context import Services
from shipyard.services.releases import get_project

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def get_candidate(svc: Services, actor: Actor, project_name: str, name: str) -> Candidate:
    actor.require(Action.READ)
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        candidate = uow.releases.get_candidate(project, name)
    if candidate is None:
        raise NotFoundError(f"candidate {name} of {project_name} not found")
    return candidate


def register_artifact(
    svc: Services,
    actor: Actor,
    project_name: str,
    candidate_name: str,
    *,
    name: str,
    digest: str,
    uri: str | None = None,
) -> Candidate:
    """Attach an externally built artifact; the candidate becomes deployable with its first one."""
    actor.require(Action.RELEASE, project=project_name)
    if not DIGEST.match(digest):
        raise InvalidError(f"digest {digest!r} must look like sha256:<64 lower-case hex digits>")
    if not name.strip() or len(name) > 255:
        raise InvalidError("an artifact needs a name (1-255 characters)")
    with svc.uow() as uow:
        project = get_project(uow, project_name)
        candidate = uow.releases.get_candidate(project, candidate_name)
        if candidate is None:
            raise NotFoundError(f"candidate {candidate_name} of {project_name} not found")
        if candidate.status in (CandidateStatus.BUILDING, CandidateStatus.FAILED) or (
            candidate.status is CandidateStatus.BUILT and candidate.build_log is not None
        ):
            raise RefusedError(
                f"{candidate.name} is built by Shipyard ({candidate.status.value}); "
                "its artifacts cannot be replaced or added to",
                code=ErrorCode.CONFLICT,
            )
        if any(a.name == name for a in candidate.artifacts):
            raise ConflictError(f"{candidate.name} already has an artifact named {name!r}")
        now = svc.clock.now()
        size = None
        if svc.artifacts.exists(digest):
            svc.artifacts.verify(digest)
        artifact = Artifact(name, digest, size, uri)
        updated = uow.releases.finish_build(
            candidate.id, status=CandidateStatus.BUILT, reason="", now=now, artifacts=[artifact]
        )
        uow.events.append(
            actor=actor.user,
            kind="artifact.registered",
            subject=candidate.name,
            project=project.name,
            now=now,
            payload={"candidate": candidate.name, "name": name, "digest": digest, "uri": uri},
        )
        if candidate.status is not CandidateStatus.BUILT:
            deployments.promote_new_candidate(svc, uow, project, updated, now)
        uow.commit()
    return updated
