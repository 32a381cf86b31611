"""Durable jobs: claimed with a lease so a dead worker's job is taken over once the lease expires.

A job that raises is tried again after a backoff; past its attempt cap it is dead and its
subject is given up in the same transaction: a build becomes a failed candidate, a deployment a
failed deployment (its environment is free again), each with the error that killed the job."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from shipyard.domain.auth import SYSTEM
from shipyard.domain.jobs import RetryPolicy, dead_message
from shipyard.domain.releases import CandidateStatus
from shipyard.ports.repositories import UnitOfWork
from shipyard.services import deployments
from shipyard.services.context import Services
from shipyard.services.deployments import DEPLOY_JOB
from shipyard.services.releases import BUILD_JOB

STOPPED = "the server stopped while it ran"


def claim(
    svc: Services,
    kinds: Sequence[str],
    owner: str,
    lease_s: float,
    policy: RetryPolicy | None = None,
) -> tuple[int, str, int] | None:
    """(job id, kind, subject id) of one due job, now leased to ``owner``.

    A job whose lease ran out as often as it may be tried (the server died during every try) is
    given up here instead of being run once more."""
    policy = policy or RetryPolicy()
    while True:
        with svc.uow() as uow:
            now = svc.clock.now()
            claimed = uow.jobs.claim(kinds=kinds, owner=owner, now=now, lease_s=lease_s)
            if claimed is None:
                uow.commit()
                return None
            attempts = uow.jobs.attempts(claimed[0])
            if attempts <= policy.max_attempts:
                uow.commit()
                return claimed
            _bury(svc, uow, claimed, owner, dead_message(attempts - 1, STOPPED), now)
            uow.commit()


def renew(svc: Services, job_id: int, owner: str, lease_s: float) -> bool:
    with svc.uow() as uow:
        ok = uow.jobs.renew(job_id, owner=owner, now=svc.clock.now(), lease_s=lease_s)
        uow.commit()
    return ok


def fail(
    svc: Services,
    claimed: tuple[int, str, int],
    owner: str,
    error: str,
    policy: RetryPolicy | None = None,
) -> bool:
    """Record that a claimed job raised: retry it after a backoff, or give it up. True: dead."""
    policy = policy or RetryPolicy()
    job_id = claimed[0]
    with svc.uow() as uow:
        now = svc.clock.now()
        attempts = uow.jobs.attempts(job_id)
        at = policy.next_try(attempts, now)
        if at is not None:
            uow.jobs.retry(job_id, owner=owner, now=now, error=error, at=at)
            uow.commit()
            return False
    message = dead_message(attempts, error)
    try:
        with svc.uow() as uow:
            _bury(svc, uow, claimed, owner, message, svc.clock.now())
            uow.commit()
    except Exception:  # giving up the subject failed too: the job is dead all the same
        with svc.uow() as uow:
            uow.jobs.bury(job_id, owner=owner, now=svc.clock.now(), error=message)
            uow.commit()
    return True


def _bury(
    svc: Services,
    uow: UnitOfWork,
    claimed: tuple[int, str, int],
    owner: str,
    message: str,
    now: datetime,
) -> None:
    job_id, kind, subject = claimed
    if not uow.jobs.bury(job_id, owner=owner, now=now, error=message):
        return  # another worker holds it now
    _GIVE_UP[kind](svc, uow, subject, message, now)


def _give_up_build(
    svc: Services, uow: UnitOfWork, candidate_id: int, message: str, now: datetime
) -> None:
    candidate = uow.releases.get_candidate_by_id(candidate_id)
    if candidate.status is not CandidateStatus.BUILDING:
        return
    project = uow.projects.get_by_id(
        uow.releases.get_release_by_id(candidate.release_id).project_id
    )
    uow.releases.finish_build(
        candidate.id, status=CandidateStatus.FAILED, reason=message, now=now, artifacts=[]
    )
    uow.events.append(
        actor=SYSTEM.user,
        kind="candidate.build_failed",
        subject=candidate.name,
        project=project.name,
        now=now,
        payload={
            "candidate": candidate.name,
            "sha": candidate.sha,
            "reason": message,
            "dead": True,
        },
    )


def _give_up_deployment(
    svc: Services, uow: UnitOfWork, deployment_id: int, message: str, now: datetime
) -> None:
    deployments.complete_deployment(
        svc, uow, deployment_id, failure=message, log=f"shipyard: {message}\n", now=now
    )


_GIVE_UP: Mapping[str, Callable[[Services, UnitOfWork, int, str, datetime], None]] = {
    BUILD_JOB: _give_up_build,
    DEPLOY_JOB: _give_up_deployment,
}
