"""The human commands: promote (and approve), pause, resume, abort. Each is a pure decision."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from shipyard.domain.auth import Role
from shipyard.domain.rollouts.handlers import run_steps
from shipyard.domain.rollouts.kinds import ACTIVE_PHASES, DECIDING, PauseReason, Phase, RecordKind
from shipyard.domain.rollouts.lifecycle import proxy_route
from shipyard.domain.rollouts.model import ApplyRoute, Decision, Record, Rollout
from shipyard.domain.rollouts.progress import advance, finish_steps
from shipyard.domain.rollouts.steps import Analysis, Approval, Pause
from shipyard.errors import ConflictError, ErrorCode, PermissionDenied, RefusedError


def _routed(before: Rollout, d: Decision) -> Decision:
    """The command's decision with the route change it needs, if any."""
    if proxy_route(d.rollout) == proxy_route(before):
        return d
    return replace(d, effects=(ApplyRoute(proxy_route(d.rollout)),))


def _require_active(r: Rollout, verb: str) -> None:
    if r.phase not in (Phase.PROGRESSING, Phase.PAUSED):
        raise ConflictError(
            f"cannot {verb} the rollout of {r.canary} in {r.environment}: it is {r.phase.value}",
            code=ErrorCode.INVALID_TRANSITION,
            details={"phase": r.phase.value},
        )


def promote(
    r: Rollout, *, user: str, roles: Sequence[str], now: datetime, full: bool = False
) -> Decision:
    """Skip the current step (a pause, an analysis, an inconclusive verdict), or all with ``full``.

    On an approval step it is an approval: from an approver (or admin) who did not ask for the
    deployment, counted once per person.
    """
    _require_active(r, "promote")
    cleared = replace(r, errors=None)
    if full:
        for gate in r.policy.steps[r.step :]:  # skipping an approval needs the right to give it
            if isinstance(gate, Approval):
                check_approver(r, gate, user=user, roles=roles)
        return _routed(r, finish_steps(cleared, now, user, f"promoted to 100% by {user}"))
    step = r.current_step
    if step is None:
        return _routed(r, finish_steps(cleared, now, user, f"promoted by {user}"))
    if isinstance(step, Approval):
        return _routed(r, _approve(cleared, step, user=user, roles=roles, now=now))
    rec = Record(
        RecordKind.SKIPPED,
        r.step,
        user,
        f"{user} promoted past step {r.step + 1}: {step.describe()}",
    )
    nxt = replace(advance(cleared, now), phase=Phase.PROGRESSING)
    return _routed(r, run_steps(nxt, now, None, (rec,)))


def _approve(
    r: Rollout, step: Approval, *, user: str, roles: Sequence[str], now: datetime
) -> Decision:
    check_approver(r, step, user=user, roles=roles)
    if user.casefold() in {a.casefold() for a in r.approvals}:
        raise ConflictError(f"{user} already approved this step", code=ErrorCode.INVALID_TRANSITION)
    approved = replace(r, approvals=(*r.approvals, user))
    rec = Record(
        RecordKind.APPROVED,
        r.step,
        user,
        f"approved by {user} ({len(approved.approvals)}/{step.required})",
    )
    return run_steps(replace(approved, phase=Phase.PROGRESSING), now, None, (rec,))


def check_approver(r: Rollout, step: Approval, *, user: str, roles: Sequence[str]) -> None:
    role_names = {str(x) for x in roles}
    allowed = {Role.APPROVER.value, Role.ADMIN.value} & role_names
    named = (
        not step.approvers
        or user in step.approvers
        or any(a.startswith("role:") and a[5:] in role_names for a in step.approvers)
    )
    if not allowed or not named:
        raise PermissionDenied(
            f"{user} may not approve this rollout step",
            details={"approvers": list(step.approvers)},
        )
    if user.strip().casefold() == r.requested_by.strip().casefold():  # Dan is dan
        raise RefusedError(
            f"{user} asked for this deployment and may not approve its rollout",
            code=ErrorCode.SEPARATION_OF_DUTIES,
            hint="a second person with the approver role must approve",
        )


def pause(r: Rollout, *, user: str, now: datetime) -> Decision:
    if r.phase is not Phase.PROGRESSING:
        _require_active(r, "pause")
        raise ConflictError("the rollout is already paused", code=ErrorCode.INVALID_TRANSITION)
    why = f"paused by {user}"
    nxt = replace(
        r, phase=Phase.PAUSED, pause_reason=why, paused_for=PauseReason.HUMAN, due_at=None
    )
    return Decision(nxt, (Record(RecordKind.PAUSED, r.step, user, why),))


def resumable(r: Rollout) -> bool:
    """A paused rollout that ``resume`` continues: a human's pause, an analysis to run again,
    errors to try again. A pause step or an approval step is gone past with ``promote``."""
    if r.phase is not Phase.PAUSED:
        return False
    step = r.current_step
    return (
        step is None
        or not isinstance(step, Pause | Approval)
        or r.paused_for in (PauseReason.HUMAN, PauseReason.ERRORS)
    )


def resume(r: Rollout, *, user: str, now: datetime) -> Decision:
    """Continue after a manual pause or errors, or re-run an inconclusive analysis."""
    if r.phase is not Phase.PAUSED:
        _require_active(r, "resume")
        raise ConflictError("the rollout is not paused", code=ErrorCode.INVALID_TRANSITION)
    step = r.current_step
    if not resumable(r):
        assert step is not None
        raise RefusedError(
            f"the rollout waits at step {r.step + 1} ({step.describe()})",
            code=ErrorCode.INVALID_TRANSITION,
            hint="use `shipyard rollout promote` to go past it",
        )
    rerun = isinstance(step, Analysis) and r.paused_for is PauseReason.INCONCLUSIVE
    analysis = None if rerun else r.analysis
    if analysis is not None and r.paused_for is PauseReason.ERRORS:
        analysis = replace(analysis, errors={})  # the error limit counts afresh
    nxt = replace(
        r,
        phase=Phase.PROGRESSING,
        pause_reason="",
        paused_for=PauseReason.NONE,
        due_at=now,
        errors=None,
        analysis=analysis,
        step_started_at=now if rerun else r.step_started_at,
    )
    why = f"resumed by {user}" + (" (analysis starts again)" if rerun else "")
    return _routed(r, run_steps(nxt, now, None, (Record(RecordKind.RESUMED, r.step, user, why),)))


def abort(r: Rollout, *, user: str, now: datetime, reason: str = "") -> Decision:
    """All traffic back to the stable version."""
    if r.phase in DECIDING or r.phase not in ACTIVE_PHASES:
        raise ConflictError(
            f"cannot abort the rollout of {r.canary} in {r.environment}: it is {r.phase.value}",
            code=ErrorCode.INVALID_TRANSITION,
            details={"phase": r.phase.value},
        )
    if r.stable is None and not r.policy.flag_routed:
        raise RefusedError(
            "nothing to go back to: this is the first version in the environment",
            code=ErrorCode.INVALID_TRANSITION,
        )
    why = f"aborted by {user}" + (f": {reason}" if reason else "")
    nxt = replace(
        r,
        phase=Phase.ABORTING,
        due_at=now,
        reason=why,
        errors=None,
        pause_reason="",
        paused_for=PauseReason.NONE,
    )
    return Decision(nxt, (Record(RecordKind.ABORTING, r.step, user, why),))
