"""Durable jobs: claimed with a lease so a dead worker's job is taken over once the lease expires."""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.services.context import Services


def claim(
    svc: Services, kinds: Sequence[str], owner: str, lease_s: float
) -> tuple[int, str, int] | None:
    """(job id, kind, subject id) of one due job, now leased to ``owner``."""
    with svc.uow() as uow:
        claimed = uow.jobs.claim(kinds=kinds, owner=owner, now=svc.clock.now(), lease_s=lease_s)
        uow.commit()
    return claimed


def renew(svc: Services, job_id: int, owner: str, lease_s: float) -> bool:
    with svc.uow() as uow:
        ok = uow.jobs.renew(job_id, owner=owner, now=svc.clock.now(), lease_s=lease_s)
        uow.commit()
    return ok
