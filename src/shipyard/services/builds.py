"""Building candidates, exactly once, as durable jobs the engine claims with a lease.

A build that is interrupted (the server killed) never recorded a result, so the job's lease
expires and the next worker runs it again; a finished build is recorded with its job in one
transaction, so it is never built twice.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from shipyard.domain.auth import SYSTEM
from shipyard.domain.releases import Artifact, Candidate, CandidateStatus
from shipyard.errors import InvalidError, ShipyardError
from shipyard.ports.builds import BuildRequest, BuildResult
from shipyard.services import deployments
from shipyard.services.context import Services
from shipyard.services.project_config import release_settings


def _log_path(svc: Services, project: str, candidate: str) -> Path:
    path = svc.logs_dir / project / f"{candidate}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _build(
    svc: Services, project: str, source: str, candidate: Candidate, version: str, log: Path
) -> tuple[BuildResult, list[Artifact]]:
    settings = release_settings(candidate.config_text)
    if settings.build_command is None:
        raise InvalidError(f"{candidate.name} has no build command in its shipyard.yaml")
    env = dict(settings.build_env) | {
        "SHIPYARD_PROJECT": project,
        "SHIPYARD_VERSION": version,
        "SHIPYARD_CANDIDATE": candidate.name,
        "SHIPYARD_SHA": candidate.sha,
    }
    git = svc.git(source)
    with (
        git.checkout(candidate.sha) as worktree,
        tempfile.TemporaryDirectory(prefix="shipyard-artifacts-") as out,
    ):
        result = svc.builder.run(
            BuildRequest(
                source_dir=worktree,
                command=settings.build_command,
                env=env,
                artifacts_dir=Path(out),
                log_path=log,
                timeout_s=settings.build_timeout_s,
                artifact_globs=settings.artifact_globs,
            )
        )
        artifacts = []
        if result.succeeded:
            for f in result.files:
                stored = svc.artifacts.put_file(f.path)
                artifacts.append(Artifact(f.name, stored.digest, stored.size, None))
    return result, artifacts


def run_build(svc: Services, job_id: int, candidate_id: int, owner: str) -> Candidate:
    """Run one claimed build job and record its outcome with the job, in one transaction."""
    with svc.uow() as uow:
        candidate = uow.releases.get_candidate_by_id(candidate_id)
        release = uow.releases.get_release_by_id(candidate.release_id)
        project = uow.projects.get_by_id(release.project_id)
        if candidate.status is not CandidateStatus.BUILDING:
            uow.jobs.complete(job_id, owner=owner, now=svc.clock.now())
            uow.commit()
            return candidate
        log = _log_path(svc, project.name, candidate.name)
        uow.releases.set_build_log(candidate.id, str(log))
        uow.commit()
    log.write_text("")  # a retried build starts a fresh log
    try:
        result, artifacts = _build(
            svc, project.name, project.source, candidate, release.version, log
        )
        ok, reason = result.succeeded, result.reason
    except ShipyardError as exc:
        ok, reason, artifacts = False, exc.message, []
        with log.open("a") as fh:
            fh.write(f"\nshipyard: {exc.message}\n")
    with svc.uow() as uow:
        now = svc.clock.now()
        status = CandidateStatus.BUILT if ok else CandidateStatus.FAILED
        done = uow.releases.finish_build(
            candidate.id, status=status, reason=reason, now=now, artifacts=artifacts
        )
        uow.jobs.complete(job_id, owner=owner, now=now)
        uow.events.append(
            actor=SYSTEM.user,
            kind="candidate.built" if ok else "candidate.build_failed",
            subject=candidate.name,
            project=project.name,
            now=now,
            payload={
                "candidate": candidate.name,
                "sha": candidate.sha,
                "reason": reason,
                "log": str(log),
                "artifacts": [{"name": a.name, "digest": a.digest} for a in artifacts],
            },
        )
        if ok:
            deployments.promote_new_candidate(svc, uow, project, done, now)
        uow.commit()
    return done
