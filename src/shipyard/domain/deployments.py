"""Deployments: one candidate going into one environment, as an immutable record and a state machine.

::

    pending ──GatesOpened/Started──────────────▶ running ──Succeeded──▶ succeeded ──RolledBack──▶ rolled_back
       │  └─NeedsApproval─▶ awaiting_approval ──┘  │  └──Failed──────▶ failed
       │                     │  Approved(satisfied)/GatesOpened/Started
       │                     └─Rejected────────────┴──Canceled────▶ canceled
       └──Canceled / Rejected────────────────────────────────────▶ canceled

``transition(deployment, event, now)`` returns the next record or raises INVALID_TRANSITION naming the
state and the event. Terminal states never change, except that a succeeded deployment becomes
rolled_back when a rollback supersedes it.

The rules around it are pure functions the services call: ``check_deployable`` (veto, build status),
``check_can_request`` (no second live deployment of one candidate into one environment),
``check_can_start`` (one running deployment per environment, never a vetoed candidate) and
``rollback_target`` / ``plan_rollback``. Gates live in ``shipyard.domain.gates``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from shipyard.domain.auth import Role
from shipyard.domain.freezes import require_aware
from shipyard.domain.releases import CandidateStatus
from shipyard.errors import ConflictError, ErrorCode, InvalidError, PermissionDenied, RefusedError

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "Approved",
    "Canceled",
    "Deployment",
    "DeploymentEvent",
    "DeploymentMode",
    "DeploymentState",
    "Failed",
    "FreezeOverride",
    "GatesOpened",
    "NeedsApproval",
    "OverrideConfirmed",
    "Rejected",
    "RollbackPlan",
    "RolledBack",
    "Started",
    "Succeeded",
    "check_can_request",
    "check_can_start",
    "check_deployable",
    "confirm_override",
    "plan_rollback",
    "request_deployment",
    "rollback_target",
    "to_cancel_before_rollback",
    "transition",
]


class DeploymentState(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ROLLED_BACK = "rolled_back"


class DeploymentMode(StrEnum):
    DEPLOY = "deploy"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


ACTIVE = frozenset(
    {DeploymentState.PENDING, DeploymentState.AWAITING_APPROVAL, DeploymentState.RUNNING}
)
TERMINAL = frozenset(DeploymentState) - ACTIVE
_WAITING = frozenset({DeploymentState.PENDING, DeploymentState.AWAITING_APPROVAL})
# roles that may confirm a freeze override
_CONFIRMER_ROLES = frozenset({Role.APPROVER.value, Role.ADMIN.value})


@dataclass(frozen=True, slots=True)
class FreezeOverride:
    """Break-glass: deploy during a freeze. Needs a reason and a second person (approver) to confirm."""

    reason: str
    requested_by: str
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise InvalidError(
                "overriding a freeze needs a reason",
                hint='pass --override-freeze --reason "why this cannot wait"',
            )

    @property
    def confirmed(self) -> bool:
        return self.confirmed_by is not None


def confirm_override(
    override: FreezeOverride, *, user: str, roles: Iterable[str], now: datetime
) -> FreezeOverride:
    """The second person's confirmation: not the requester, and holding the approver (or admin) role."""
    if user == override.requested_by:
        raise RefusedError(
            f"{user} asked to override the freeze and may not confirm it",
            code=ErrorCode.SEPARATION_OF_DUTIES,
            hint="a second person with the approver role must confirm",
            details={"user": user, "requested_by": override.requested_by},
        )
    if not {str(r) for r in roles} & _CONFIRMER_ROLES:
        raise PermissionDenied(
            f"{user} may not confirm a freeze override (needs the approver role)",
            details={"user": user},
        )
    if override.confirmed:
        raise ConflictError(
            f"the freeze override was already confirmed by {override.confirmed_by}",
            code=ErrorCode.INVALID_TRANSITION,
        )
    return replace(override, confirmed_by=user, confirmed_at=require_aware(now))


@dataclass(frozen=True, slots=True)
class Deployment:
    id: int
    project: str
    environment: str
    candidate: str
    mode: DeploymentMode
    state: DeploymentState
    requested_by: str
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    from_candidate: str | None = (
        None  # what ran in the environment before (rollback: what it replaces)
    )
    reason: str = ""  # why it was asked for (rollback reason, promote trigger)
    override_freeze: FreezeOverride | None = None
    waiting_for: tuple[str, ...] = ()  # what it waits for while pending / awaiting_approval
    outcome: str = ""  # how it ended: failure reason, who rejected or canceled, what superseded it
    policy: str | None = (
        None  # a release policy chosen for this deployment instead of the environment's
    )
    failure_code: str = ""  # why it failed, as an ErrorCode value: clients branch on it (exit codes)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def label(self) -> str:
        return f"deployment {self.id} ({self.candidate} to {self.environment}, {self.state.value})"


def request_deployment(
    *,
    id: int,
    project: str,
    environment: str,
    candidate: str,
    requested_by: str,
    now: datetime,
    mode: DeploymentMode = DeploymentMode.DEPLOY,
    from_candidate: str | None = None,
    reason: str = "",
    override_freeze: FreezeOverride | None = None,
    policy: str | None = None,
) -> Deployment:
    """A new deployment in state pending; evaluate the gates next (``gates.evaluate_gates``)."""
    return Deployment(
        id=id,
        project=project,
        environment=environment,
        candidate=candidate,
        mode=mode,
        state=DeploymentState.PENDING,
        requested_by=requested_by,
        requested_at=require_aware(now),
        from_candidate=from_candidate,
        reason=reason,
        override_freeze=override_freeze,
        policy=policy,
    )


# ---- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatesOpened:
    """Every gate holds (and the environment is free): the deployment runs."""


@dataclass(frozen=True, slots=True)
class Started:
    """The engine started it; same effect as GatesOpened, for callers that checked gates themselves."""


@dataclass(frozen=True, slots=True)
class NeedsApproval:
    """A gate waits for people: approvals, or the confirmation of a freeze override."""

    waiting_for: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Approved:
    """An approval was recorded; ``satisfied`` is the verdict of the rule with it counted."""

    by: str
    satisfied: bool


@dataclass(frozen=True, slots=True)
class OverrideConfirmed:
    by: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class Rejected:
    by: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Succeeded:
    pass


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str = ""
    code: str = ""  # the ErrorCode of the cause (digest_mismatch, rolled_back, ...)


@dataclass(frozen=True, slots=True)
class Canceled:
    by: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RolledBack:
    """A rollback deployment superseded this succeeded one."""

    by_deployment: int | None = None


DeploymentEvent = (
    GatesOpened
    | Started
    | NeedsApproval
    | Approved
    | OverrideConfirmed
    | Rejected
    | Succeeded
    | Failed
    | Canceled
    | RolledBack
)


def _invalid(deployment: Deployment, event: DeploymentEvent) -> ConflictError:
    name = type(event).__name__
    return ConflictError(
        f"deployment {deployment.id} is {deployment.state.value}; {name} does not apply",
        code=ErrorCode.INVALID_TRANSITION,
        details={"deployment": deployment.id, "state": deployment.state.value, "event": name},
    )


def transition(deployment: Deployment, event: DeploymentEvent, now: datetime) -> Deployment:
    """The next record after ``event`` at ``now``, or INVALID_TRANSITION."""
    at = require_aware(now)
    state = deployment.state
    run = replace(deployment, state=DeploymentState.RUNNING, started_at=at, waiting_for=())
    match event:
        case GatesOpened() | Started() if state in _WAITING:
            return run
        case NeedsApproval(waiting_for=waiting) if state in _WAITING:
            return replace(deployment, state=DeploymentState.AWAITING_APPROVAL, waiting_for=waiting)
        case Approved(satisfied=True) if state is DeploymentState.AWAITING_APPROVAL:
            return run
        case Approved(satisfied=False) if state is DeploymentState.AWAITING_APPROVAL:
            return deployment
        case OverrideConfirmed(by=by, roles=roles) if state in _WAITING:
            if deployment.override_freeze is None:
                raise _invalid(deployment, event)
            confirmed = confirm_override(deployment.override_freeze, user=by, roles=roles, now=at)
            return replace(deployment, override_freeze=confirmed)
        case Rejected(by=by, comment=comment) if state in _WAITING:
            text = f"rejected by {by}" + (f": {comment}" if comment else "")
            return _finish(deployment, DeploymentState.CANCELED, at, text)
        case Canceled(by=by, reason=reason) if state in ACTIVE:
            text = f"canceled by {by}" + (f": {reason}" if reason else "")
            return _finish(deployment, DeploymentState.CANCELED, at, text)
        case Succeeded() if state is DeploymentState.RUNNING:
            return _finish(deployment, DeploymentState.SUCCEEDED, at, "")
        case Failed(reason=reason, code=code) if state is DeploymentState.RUNNING:
            failed = _finish(deployment, DeploymentState.FAILED, at, reason or "failed")
            return replace(failed, failure_code=code or ErrorCode.DEPLOYMENT_FAILED.value)
        case RolledBack(by_deployment=by) if state is DeploymentState.SUCCEEDED:
            text = "rolled back" + (f" by deployment {by}" if by is not None else "")
            return replace(deployment, state=DeploymentState.ROLLED_BACK, outcome=text)
    raise _invalid(deployment, event)


def _finish(
    deployment: Deployment, state: DeploymentState, at: datetime, outcome: str
) -> Deployment:
    return replace(deployment, state=state, finished_at=at, waiting_for=(), outcome=outcome)


# ---- rules --------------------------------------------------------------------------------------


def check_deployable(
    status: CandidateStatus, vetoed: bool, *, candidate: str = "the candidate", reason: str = ""
) -> None:
    """A vetoed candidate is never deployed (VETOED); neither is one that is not built."""
    if vetoed:
        why = f": {reason}" if reason else ""
        raise RefusedError(
            f"{candidate} is vetoed{why}",
            code=ErrorCode.VETOED,
            hint="vetoed candidates are never deployed, promoted or rolled back to; cut or pick a new one",
            details={"candidate": candidate},
        )
    if status is not CandidateStatus.BUILT:
        raise RefusedError(
            f"{candidate} is not deployable: its build is {status.value.replace('_', ' ')}",
            code=ErrorCode.GATE_CLOSED,
            hint="only built candidates deploy; wait for the build or pick a fix",
            details={"candidate": candidate, "status": status.value},
        )


def check_can_request(
    project: str, environment: str, candidate: str, deployments: Iterable[Deployment]
) -> None:
    """One live deployment of a candidate into an environment at a time: a second request (a
    double-click, a re-delivered promotion) is refused as a conflict naming the first."""
    for other in deployments:
        if (
            other.active
            and other.project == project
            and other.environment == environment
            and other.candidate == candidate
        ):
            raise ConflictError(
                f"{candidate} is already being deployed to {environment} (deployment {other.id}, "
                f"{other.state.value})",
                details={"deployment": other.id, "state": other.state.value},
            )


def check_can_start(
    deployment: Deployment, deployments: Iterable[Deployment], vetoed: Collection[str]
) -> None:
    """Right before GatesOpened/Started: never a vetoed candidate, never two running in one environment."""
    if deployment.candidate in vetoed:
        raise RefusedError(
            f"{deployment.candidate} is vetoed and will not be deployed to {deployment.environment}",
            code=ErrorCode.VETOED,
            details={"deployment": deployment.id, "candidate": deployment.candidate},
        )
    for other in deployments:
        if (
            other.id != deployment.id
            and other.state is DeploymentState.RUNNING
            and other.project == deployment.project
            and other.environment == deployment.environment
        ):
            raise ConflictError(
                f"{deployment.environment} is busy: deployment {other.id} ({other.candidate}) is running",
                details={"deployment": deployment.id, "running": other.id},
            )


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    candidate: str  # what to deploy (mode rollback)
    replaces: str  # what the environment runs now (or what failed there)
    because: str  # one line for the user and the event

    @property
    def from_candidate(self) -> str:
        return self.replaces


def plan_rollback(
    history: Sequence[Deployment], vetoed: Collection[str] = ()
) -> RollbackPlan | None:
    """Which candidate a rollback deploys, from this environment's history (newest first).

    The last deployment that touched the environment (succeeded, or started then failed or was
    canceled; a running one counts too, it is canceled first) names the candidate to replace. If it
    succeeded, go back to the candidate that ran before it; if not, to the last candidate that
    succeeded there. Rolled-back, vetoed and equal-to-current candidates are skipped. Never rebuilds:
    only candidates that already succeeded in this environment are chosen. None when there is none.
    """
    touched = [
        d for d in history if d.state is DeploymentState.SUCCEEDED or d.started_at is not None
    ]
    if not touched:
        return None
    last = touched[0]
    current = last.candidate
    for d in touched[1:]:
        if (
            d.state is DeploymentState.SUCCEEDED
            and d.candidate != current
            and d.candidate not in vetoed
        ):
            if last.state is DeploymentState.SUCCEEDED:
                because = f"the last deployment ({current}) succeeded; going back to {d.candidate}, which ran before it"
            elif last.state is DeploymentState.ROLLED_BACK:
                because = f"{current} was rolled back; going back to {d.candidate}"
            else:
                how = _HOW.get(last.state, last.state.value)
                because = (
                    f"the last deployment ({current}) {how}; "
                    f"going back to {d.candidate}, the last candidate that succeeded there"
                )
            return RollbackPlan(d.candidate, current, because)
    return None


_HOW = {
    DeploymentState.FAILED: "failed",
    DeploymentState.CANCELED: "was canceled while running",
    DeploymentState.RUNNING: "is still running",
}


def rollback_target(history: Sequence[Deployment], vetoed: Collection[str] = ()) -> str | None:
    """The candidate ``plan_rollback`` chooses, or None."""
    plan = plan_rollback(history, vetoed)
    return plan.candidate if plan else None


def to_cancel_before_rollback(history: Iterable[Deployment]) -> list[Deployment]:
    """Deployments a rollback cancels first (every live one in the environment), oldest first."""
    return sorted((d for d in history if d.active), key=lambda d: (d.requested_at, d.id))
