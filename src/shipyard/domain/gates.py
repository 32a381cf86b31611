"""Gates: what must hold before a deployment starts, evaluated when it would start, not when asked.

``evaluate_gates(env, ctx, now)`` combines the three gates of an environment into one value:

- ``requires``: the candidate succeeded in the listed environments (all, or at least N). Unmet → CLOSED
  (GATE_CLOSED), naming what is missing.
- freeze windows: frozen → CLOSED (FROZEN) with the window and when it ends; with a freeze override
  (reason given) it WAITs until a second person with the approver role confirms, then passes.
  Rollbacks pass when the environment allows rollbacks during freezes (the default).
- approval: the rule not yet satisfied → WAIT (awaiting_approval) saying how many more from whom;
  an eligible reject → REJECTED.

Outcome precedence: REJECTED > CLOSED > WAIT > OPEN; ``reasons`` lists every unmet gate, so one
answer tells the user everything that is missing. Rollbacks skip ``requires`` and approvals: the
candidate already ran in this environment, and a rollback must not wait for people (Octopus users
complain that redeploys re-run manual interventions).

``auto_promotions`` is the continuous-deployment rule: which environments a success unlocks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from shipyard.domain.approvals import Approval, ApprovalVerdict, evaluate_approvals
from shipyard.domain.deployments import (
    ACTIVE,
    Canceled,
    Deployment,
    DeploymentEvent,
    DeploymentMode,
    DeploymentState,
    FreezeOverride,
    GatesOpened,
    NeedsApproval,
    Rejected,
    check_can_start,
    transition,
)
from shipyard.domain.environments import EnvironmentRules, Requires, in_order
from shipyard.domain.freezes import ActiveFreeze, active_freeze, next_unfrozen, require_aware
from shipyard.errors import ConflictError, ErrorCode, RefusedError

__all__ = [
    "GateContext",
    "GateOutcome",
    "GateVerdict",
    "apply_gates",
    "auto_promotions",
    "auto_promotions_after",
    "evaluate_gates",
    "evaluate_requires",
]


class GateOutcome(StrEnum):
    OPEN = "open"  # start it now
    WAIT = "wait"  # awaiting_approval: approvals, or a freeze override's confirmation
    CLOSED = "closed"  # refused: requires unmet, or frozen without override
    REJECTED = "rejected"  # an approver rejected it: cancel


@dataclass(frozen=True, slots=True)
class GateVerdict:
    outcome: GateOutcome
    reasons: tuple[str, ...] = ()  # every unmet gate, one line each
    waiting_for: tuple[str, ...] = ()  # what a WAIT waits for
    code: ErrorCode | None = None  # GATE_CLOSED / FROZEN when CLOSED, VETOED... never for OPEN
    notes: tuple[
        str, ...
    ] = ()  # gates passed by exception (override, rollback in a freeze): for the event
    approvals: ApprovalVerdict | None = None
    freeze: ActiveFreeze | None = None
    unfrozen_at: datetime | None = None  # when the freeze ends (None with a freeze: it never ends)
    missing_envs: tuple[str, ...] = ()

    @property
    def open(self) -> bool:
        return self.outcome is GateOutcome.OPEN

    def describe(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "all gates hold"

    def raise_if_closed(self, environment: str = "") -> None:
        """Refuse a request whose gates are CLOSED (RefusedError GATE_CLOSED or FROZEN)."""
        if self.outcome is not GateOutcome.CLOSED:
            return
        where = f"{environment}: " if environment else ""
        hint = None
        if self.code is ErrorCode.FROZEN:
            hint = 'pass --override-freeze --reason "..." and ask a second approver to confirm'
        raise RefusedError(
            where + self.describe(),
            code=self.code or ErrorCode.GATE_CLOSED,
            hint=hint,
            details={
                "reasons": list(self.reasons),
                "missing_environments": list(self.missing_envs),
                "frozen_until": self.unfrozen_at.isoformat() if self.unfrozen_at else None,
            },
        )

    def event(self) -> DeploymentEvent | None:
        """The state-machine event this verdict means for a pending / awaiting deployment; None for
        CLOSED (refuse the request; a deployment already waiting keeps waiting and is re-evaluated)."""
        match self.outcome:
            case GateOutcome.OPEN:
                return GatesOpened()
            case GateOutcome.WAIT:
                return NeedsApproval(self.waiting_for)
            case GateOutcome.REJECTED:
                by = ", ".join(self.approvals.rejected_by) if self.approvals else "an approver"
                return Rejected(by)
        return None


@dataclass(frozen=True, slots=True)
class GateContext:
    """What the services know about one deployment when evaluating its gates."""

    candidate: str
    requested_by: str
    mode: DeploymentMode = DeploymentMode.DEPLOY
    succeeded_in: frozenset[str] = frozenset()  # environments where this candidate succeeded
    approvals: tuple[Approval, ...] = ()  # decisions recorded for this environment
    barred: Mapping[str, str] = field(default_factory=dict)  # approvals.barred_users(...)
    override: FreezeOverride | None = None

    @classmethod
    def for_deployment(
        cls,
        deployment: Deployment,
        *,
        succeeded_in: Iterable[str] = (),
        approvals: Iterable[Approval] = (),
        barred: Mapping[str, str] | None = None,
    ) -> GateContext:
        return cls(
            candidate=deployment.candidate,
            requested_by=deployment.requested_by,
            mode=deployment.mode,
            succeeded_in=frozenset(succeeded_in),
            approvals=tuple(approvals),
            barred=dict(barred or {}),
            override=deployment.override_freeze,
        )


def evaluate_requires(requires: Requires, succeeded_envs: Collection[str]) -> GateVerdict:
    """OPEN when the candidate succeeded in enough of the required environments; else CLOSED saying
    which ("requires staging (not yet succeeded there)", "requires 2 of a, b, c (succeeded in: a)")."""
    if not requires.envs:
        return GateVerdict(GateOutcome.OPEN)
    done = [e for e in requires.envs if e in succeeded_envs]
    missing = tuple(e for e in requires.envs if e not in succeeded_envs)
    if len(done) >= requires.needed:
        return GateVerdict(GateOutcome.OPEN)
    if requires.needed == len(requires.envs):
        if len(missing) == 1:
            reason = f"requires {missing[0]} (not yet succeeded there)"
        else:
            reason = (
                f"requires {', '.join(requires.envs)} (not yet succeeded in {', '.join(missing)})"
            )
    else:
        where = ", ".join(done) if done else "none"
        reason = f"requires at least {requires.needed} of {', '.join(requires.envs)} (succeeded in: {where})"
    return GateVerdict(
        GateOutcome.CLOSED, (reason,), code=ErrorCode.GATE_CLOSED, missing_envs=missing
    )


def evaluate_gates(env: EnvironmentRules, ctx: GateContext, now: datetime) -> GateVerdict:
    """Every gate of ``env`` for the deployment described by ``ctx`` at ``now``."""
    now = require_aware(now)
    rollback = ctx.mode is DeploymentMode.ROLLBACK
    reasons: list[str] = []
    waiting: list[str] = []
    notes: list[str] = []
    closed_code: ErrorCode | None = None
    missing: tuple[str, ...] = ()

    if not rollback:
        required = evaluate_requires(env.requires, ctx.succeeded_in)
        if not required.open:
            reasons.extend(required.reasons)
            closed_code = ErrorCode.GATE_CLOSED
            missing = required.missing_envs

    freeze, unfrozen_at, frozen = _freeze_gate(env, ctx, now, notes, waiting)
    if frozen:
        reasons.append(frozen)
        if ctx.override is None:  # with an unconfirmed override it waits instead
            closed_code = closed_code or ErrorCode.FROZEN

    approvals: ApprovalVerdict | None = None
    if env.approval is not None and not rollback:
        approvals = evaluate_approvals(env.approval, ctx.approvals, ctx.candidate, now, ctx.barred)
        if not approvals.satisfied:
            reasons.append(approvals.describe())
            if not approvals.rejected:
                waiting.append(approvals.describe())

    if approvals is not None and approvals.rejected:
        outcome = GateOutcome.REJECTED
    elif closed_code is not None:
        outcome = GateOutcome.CLOSED
    elif waiting:
        outcome = GateOutcome.WAIT
    else:
        outcome = GateOutcome.OPEN
    return GateVerdict(
        outcome=outcome,
        reasons=tuple(reasons),
        waiting_for=tuple(waiting),
        code=closed_code if outcome is GateOutcome.CLOSED else None,
        notes=tuple(notes),
        approvals=approvals,
        freeze=freeze,
        unfrozen_at=unfrozen_at,
        missing_envs=missing,
    )


def _freeze_gate(
    env: EnvironmentRules, ctx: GateContext, now: datetime, notes: list[str], waiting: list[str]
) -> tuple[ActiveFreeze | None, datetime | None, str]:
    """The active freeze, when it ends, and the unmet-gate line ("" when the freeze lets it pass or
    there is none); appends to ``notes`` / ``waiting``."""
    freeze = active_freeze(env.freezes, now)
    if freeze is None:
        return None, None, ""
    unfrozen_at = next_unfrozen(env.freezes, now)
    frozen = f"{env.name} is {freeze.describe()}"
    if unfrozen_at is None:
        frozen = f"{env.name} is frozen by {freeze.window.label} with no end"
    elif unfrozen_at != freeze.until:
        frozen = f"{frozen}, unfrozen at {unfrozen_at:%Y-%m-%d %H:%M} UTC"
    if ctx.mode is DeploymentMode.ROLLBACK and env.rollback_during_freeze:
        notes.append(f"rollback allowed during the freeze ({frozen})")
        return freeze, unfrozen_at, ""
    if ctx.override is None:
        return freeze, unfrozen_at, frozen
    if ctx.override.confirmed:
        notes.append(
            f"freeze overridden by {ctx.override.requested_by}, confirmed by {ctx.override.confirmed_by}: "
            f"{ctx.override.reason}"
        )
        return freeze, unfrozen_at, ""
    need = f"a second approver to confirm {ctx.override.requested_by}'s freeze override"
    waiting.append(need)
    return freeze, unfrozen_at, f"{frozen}; waiting for {need}"


_LIVE_OR_DONE = ACTIVE | {DeploymentState.SUCCEEDED, DeploymentState.ROLLED_BACK}


def auto_promotions(
    envs: Sequence[EnvironmentRules],
    succeeded_env: str | None,
    candidate: str,
    *,
    succeeded_in: Collection[str] = (),
    deployments: Iterable[Deployment] = (),
    vetoed: Collection[str] = (),
) -> list[str]:
    """Environments to promote ``candidate`` into automatically, in promotion order.

    After a success in ``succeeded_env``: each environment with ``auto_promote`` that lists it in
    ``requires`` (or, without requires, comes right after it in promotion order) and whose requires
    are now met. With ``succeeded_env=None`` (the candidate was just built): environments with
    ``single_step``, and the first environment when it auto-promotes and requires nothing.

    At most once per (candidate, environment), so a re-delivered or repeated success never promotes
    twice: an environment is left out when the candidate is vetoed, already has a live, succeeded or
    rolled-back deployment there, or was ever promoted there automatically, whatever became of that
    promotion (``deployments``: the project's deployments, any environment). A person can always
    deploy it by hand.
    """
    if candidate in vetoed:
        return []
    ordered = in_order(envs)
    done = set(succeeded_in)
    taken = {
        d.environment
        for d in deployments
        if d.candidate == candidate
        and (d.state in _LIVE_OR_DONE or d.mode is DeploymentMode.PROMOTE)
    }
    chosen: list[EnvironmentRules] = []
    if succeeded_env is None:
        first = ordered[0] if ordered else None
        for env in ordered:
            if env.single_step or (env is first and env.auto_promote and not env.requires.envs):
                chosen.append(env)
    else:
        done.add(succeeded_env)
        source = next((e for e in ordered if e.name == succeeded_env), None)
        if source is None:
            return []
        later = [e for e in ordered if e.order > source.order]
        following = later[0].name if later else None
        for env in later:
            if not env.auto_promote:
                continue
            unlocked = succeeded_env in env.requires.envs or (
                not env.requires.envs and env.name == following
            )
            if unlocked and evaluate_requires(env.requires, done).open:
                chosen.append(env)
    return [e.name for e in chosen if e.name not in taken]


def auto_promotions_after(
    envs: Sequence[EnvironmentRules],
    done: Deployment,
    *,
    succeeded_in: Collection[str] = (),
    deployments: Iterable[Deployment] = (),
    vetoed: Collection[str] = (),
) -> list[str]:
    """``auto_promotions`` for the success of ``done``; a rollback's success promotes nothing (it
    brings an older candidate back, it is not a step forward)."""
    if done.state is not DeploymentState.SUCCEEDED or done.mode is DeploymentMode.ROLLBACK:
        return []
    return auto_promotions(
        envs,
        done.environment,
        done.candidate,
        succeeded_in=succeeded_in,
        deployments=deployments,
        vetoed=vetoed,
    )


def apply_gates(
    deployment: Deployment,
    verdict: GateVerdict,
    deployments: Iterable[Deployment],
    vetoed: Collection[str],
    now: datetime,
    *,
    actor: str = "shipyard",
) -> Deployment:
    """What a verdict does to a pending / awaiting_approval deployment, never raising for an
    expected outcome (compare the result with the input to know whether anything changed):

    - OPEN: runs, unless its candidate was vetoed meanwhile (canceled) or another deployment runs in
      the environment (stays waiting, ``waiting_for`` says which; re-evaluate when that one ends);
    - WAIT: awaiting_approval, ``waiting_for`` what is missing;
    - REJECTED: canceled;
    - CLOSED (e.g. a freeze began while it waited for approvals): stays in its state, ``waiting_for``
      the reasons. Requests are refused on CLOSED earlier, with ``verdict.raise_if_closed``.
    """
    if deployment.terminal or deployment.state is DeploymentState.RUNNING:
        return deployment
    event = verdict.event()
    if event is None:
        return replace(deployment, waiting_for=verdict.reasons)
    if isinstance(event, GatesOpened):
        try:
            check_can_start(deployment, deployments, vetoed)
        except RefusedError as err:  # vetoed while it waited
            return transition(deployment, Canceled(actor, err.message), now)
        except ConflictError as err:  # the environment is busy
            return replace(deployment, waiting_for=(err.message,))
    return transition(deployment, event, now)
