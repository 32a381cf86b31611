"""Proving the audit log: its chain heads (to anchor elsewhere) and a walk over every seal.

An operator copies a head's hash somewhere the database cannot reach (a ticket, another
system's log); ``verify`` with that anchor later proves the log still reaches it, which catches
what no seal can: the whole tail of a chain cut off together with its head.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shipyard.domain.audit import NO_PROJECT, AuditReport, Head
from shipyard.domain.auth import Action, Actor
from shipyard.errors import IntegrityError, InvalidError, NotFoundError
from shipyard.services.context import Services

_HASH = re.compile(r"[0-9a-f]{64}")


def heads(svc: Services, actor: Actor) -> Sequence[Head]:
    """Every chain's head: project-less events first, then the projects by name."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.audit.heads()


def head(svc: Services, actor: Actor, project: str) -> Head:
    """The head of ``project``'s chain (position 0 and no hash before its first event)."""
    actor.require(Action.READ)
    with svc.uow() as uow:
        found = {h.chain: h for h in uow.audit.heads()}.get(project)
        if found is None and uow.projects.get(project) is None:
            raise NotFoundError(f"project {project!r} not found")
    return found or Head(project, 0, "")


def verify(
    svc: Services, actor: Actor, *, project: str | None = None, anchor: str | None = None
) -> AuditReport:
    """Walk the chains (all, or ``project``'s); raise IntegrityError naming the first break."""
    actor.require(Action.READ)
    if anchor is not None:
        anchor = anchor.strip().lower()
        if not _HASH.fullmatch(anchor):
            raise InvalidError("an anchor is a chain hash: 64 hexadecimal characters")
    if project is not None and project == NO_PROJECT:
        raise InvalidError("a project name cannot be empty")
    with svc.uow() as uow:
        if project is not None and uow.projects.get(project) is None:
            known = {h.chain for h in uow.audit.heads()}
            if project not in known:
                raise NotFoundError(f"project {project!r} not found")
        report = uow.audit.verify(chains=None if project is None else [project], anchor=anchor)
    b = report.broken
    if b is not None:
        raise IntegrityError(
            b.message,
            hint="restore the database from a backup taken before that row, and find who wrote it",
            details={
                "kind": b.kind.value,
                "table": b.table,
                "id": b.id,
                "project": b.chain or None,
                "seq": b.seq,
            },
        )
    return report
