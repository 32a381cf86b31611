"""Flag changes of protected environments pass the same gates as a deployment.

A person's change to a flag of a ``protected: true`` environment becomes a request (Unleash's
change requests, see ``flags._apply``); it is applied once the environment's approvers have
approved it: as many as its approval rule requires (one without a rule), never the requester,
never during a freeze. It is applied only onto the definition it was asked against: a flag that
changed meanwhile closes the request, so nobody approves a change they did not see. Anyone who may
approve there may reject, the requester included (stopping is always safe).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from shipyard.domain.approvals import ApprovalRule
from shipyard.domain.auth import Action, Actor
from shipyard.domain.releases import Project
from shipyard.errors import ConflictError, ErrorCode, NotFoundError, PermissionDenied, RefusedError
from shipyard.ports.repositories import FlagRequest, FlagRequestState, UnitOfWork
from shipyard.services.context import Services
from shipyard.services.flags import (
    SEGMENTS,
    SEGMENTS_UPDATED,
    check_not_frozen,
    write_change,
    write_segments,
)
from shipyard.services.live_policy import environment_now
from shipyard.services.releases import get_project


def _mine(actor: Actor, r: FlagRequest) -> bool:
    return actor.user.strip().casefold() == r.requested_by.strip().casefold()


def _locked(uow: UnitOfWork, actor: Actor, request_id: int, action: Action) -> FlagRequest:
    r = uow.flag_requests.lock(request_id)
    if r is None:
        raise NotFoundError(f"flag change request {request_id} not found")
    actor.require(action, project=r.project, environment=r.environment)
    if r.state is not FlagRequestState.PENDING:
        raise ConflictError(
            f"flag change request {request_id} is {r.state.value}",
            code=ErrorCode.INVALID_TRANSITION,
        )
    return r


def _event(uow: UnitOfWork, actor: str, kind: str, r: FlagRequest, now: datetime) -> None:
    uow.events.append(
        actor=actor,
        kind=kind,
        subject=f"flag {r.environment}/{r.key}",
        project=r.project,
        now=now,
        payload={"request": r.id, "key": r.key, "approvals": list(r.approvals)},
    )


def approve(svc: Services, actor: Actor, request_id: int) -> FlagRequest:
    """Approve a pending change; it is applied (state ``applied``) once enough approvers agree."""
    actor.require(Action.APPROVE)
    with svc.uow() as uow:
        r = _locked(uow, actor, request_id, Action.APPROVE)
        project = get_project(uow, r.project)
        now = svc.clock.now()
        if _mine(actor, r):
            raise RefusedError(
                f"{actor.user} asked for this flag change and may not approve it",
                code=ErrorCode.SEPARATION_OF_DUTIES,
                hint="a second person with the approver role must approve",
            )
        if actor.user.casefold() in {a.casefold() for a in r.approvals}:
            raise ConflictError(
                f"{actor.user} already approved request {r.id}", code=ErrorCode.INVALID_TRANSITION
            )
        rules = environment_now(svc, uow, project, r.environment, now)
        rule = (rules.approval if rules else None) or ApprovalRule()
        if not rule.admits(actor.user, [actor.role.value]):
            raise PermissionDenied(
                f"{actor.user} is not an approver for {r.environment} "
                f"(approvers: {rule.describe_approvers()})"
            )
        if rules is not None:
            check_not_frozen(rules, now)
        r = replace(r, approvals=(*r.approvals, actor.user))
        if len(r.approvals) >= rule.required:
            uow.flags.lock(project, r.environment, now)
            apply = _APPLY.get(r.kind, _apply_flag)
            if not apply(uow, project, r, now):
                r = replace(
                    r, state=FlagRequestState.REJECTED, decided_by="shipyard", decided_at=now
                )
                uow.flag_requests.save(r)
                _event(uow, "shipyard", "flag.change_stale", r, now)
                uow.commit()
                raise ConflictError(
                    f"{r.key or 'the segments'} changed since request {r.id} was made; "
                    "it is closed",
                    hint="ask for the change again against what is there now",
                )
            r = replace(r, state=FlagRequestState.APPLIED, decided_by=actor.user, decided_at=now)
        uow.flag_requests.save(r)
        _event(uow, actor.user, "flag.change_approved", r, now)
        uow.commit()
    return r


def _approved(r: FlagRequest) -> dict[str, Any]:
    return {"request": r.id, "approved_by": list(r.approvals)}


def _apply_flag(uow: UnitOfWork, project: Project, r: FlagRequest, now: datetime) -> bool:
    """Apply a flag change onto the definition it was asked against; False when it moved."""
    before = uow.flags.get(project, r.environment, r.key)
    if (dict(before.definition) if before else None) != r.before:
        return False
    write_change(
        uow, r.requested_by, project, r.environment, r.key, before, r.after, r.kind, now,
        _approved(r),
    )  # fmt: skip
    return True


def _apply_segments(uow: UnitOfWork, project: Project, r: FlagRequest, now: datetime) -> bool:
    """Replace the segments they were asked against; False when they moved."""
    current = list(uow.flags.segments(project, r.environment))
    if r.before is None or current != r.before.get(SEGMENTS):
        return False
    write_segments(
        uow, r.requested_by, project, r.environment, r.after[SEGMENTS], now, _approved(r)
    )
    return True


# how an approved request is applied, by the flag event it becomes (default: a flag change)
_APPLY: dict[str, Callable[[UnitOfWork, Project, FlagRequest, datetime], bool]] = {
    SEGMENTS_UPDATED: _apply_segments,
}


def reject(svc: Services, actor: Actor, request_id: int) -> FlagRequest:
    """Close a pending change without applying it: an approver there, or its requester."""
    with svc.uow() as uow:
        found = uow.flag_requests.lock(request_id)
        mine = found is not None and _mine(actor, found)
        r = _locked(uow, actor, request_id, Action.DEPLOY if mine else Action.APPROVE)
        now = svc.clock.now()
        r = replace(r, state=FlagRequestState.REJECTED, decided_by=actor.user, decided_at=now)
        uow.flag_requests.save(r)
        _event(uow, actor.user, "flag.change_rejected", r, now)
        uow.commit()
    return r


def list_requests(
    svc: Services, actor: Actor, project: str, environment: str, *, pending_only: bool = True
) -> Sequence[FlagRequest]:
    actor.require(Action.READ)
    with svc.uow() as uow:
        return uow.flag_requests.list(
            get_project(uow, project), environment, pending_only=pending_only
        )
