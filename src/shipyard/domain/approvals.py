"""Approval rules and decisions: N distinct eligible approvers, expiry, separation of duties.

An approval is bound to (candidate, environment), never to a job or a run: one decision is one
approval however many times the deployment is retried. The services pass the decisions recorded for
the environment; the rules here say which of them count.

- A user counts once, whatever number of times they decided; their latest decision is their vote
  (a reject wins a tie). User names are compared case-insensitively: ``Dan`` is ``dan``.
- A decision for another candidate is void (the candidate changed under it).
- A decision older than ``expires_after`` is expired.
- Only eligible users count: listed by name, or holding a listed ``role:<role>``; an empty list means
  any user holding the approver or admin role.
- Separation of duties: barred users (who cut or picked the candidate and, unless ``allow_authors``,
  the authors of the commits the deployment brings) may not approve. They may reject: stopping a
  deployment is always safe.
- A reject by an eligible user rejects.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from shipyard.domain.auth import Role, parse_role
from shipyard.domain.freezes import require_aware
from shipyard.errors import ErrorCode, InvalidError, PermissionDenied, RefusedError

__all__ = [
    "ROLE_PREFIX",
    "Approval",
    "ApprovalRule",
    "ApprovalVerdict",
    "Decision",
    "barred_reason",
    "barred_users",
    "check_can_approve",
    "evaluate_approvals",
]

ROLE_PREFIX = "role:"
# Who may approve when a rule names no approvers.
_DEFAULT_APPROVER_ROLES = frozenset({Role.APPROVER.value, Role.ADMIN.value})


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """``required`` distinct approvals from ``approvers`` (user names or ``role:<role>``)."""

    required: int = 1
    approvers: tuple[str, ...] = ()
    expires_after: timedelta | None = None
    allow_authors: bool = False

    def __post_init__(self) -> None:
        if self.required < 1:
            raise InvalidError(
                f"approval.required must be at least 1, got {self.required}",
                details={"required": self.required},
            )
        for entry in self.approvers:
            name = entry.removeprefix(ROLE_PREFIX)
            if not name.strip() or name != name.strip():
                raise InvalidError(
                    f"approver {entry!r} is empty or padded", details={"approver": entry}
                )
            if entry.startswith(ROLE_PREFIX):
                parse_role(name)  # a misspelt role would leave nobody able to approve
        if self.expires_after is not None and self.expires_after <= timedelta(0):
            raise InvalidError(
                f"approval.expires_after must be positive, got {self.expires_after}",
                details={"expires_after_seconds": self.expires_after.total_seconds()},
            )

    @property
    def users(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers if not a.startswith(ROLE_PREFIX))

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(
            a.removeprefix(ROLE_PREFIX) for a in self.approvers if a.startswith(ROLE_PREFIX)
        )

    def admits(self, user: str, roles: Iterable[str]) -> bool:
        """Whether ``user`` holding ``roles`` is one of the approvers this rule names."""
        held = {str(r) for r in roles}
        if not self.approvers:
            return bool(held & _DEFAULT_APPROVER_ROLES)
        return _key(user) in {_key(u) for u in self.users} or bool(held & self.roles)

    def describe_approvers(self) -> str:
        return ", ".join(self.approvers) if self.approvers else "role:approver, role:admin"


@dataclass(frozen=True, slots=True)
class Approval:
    """One recorded decision by one user about deploying ``candidate`` to an environment."""

    user: str
    roles: frozenset[str]
    decided_at: datetime
    candidate: str
    decision: Decision = Decision.APPROVE
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalVerdict:
    """What the recorded decisions add up to at one moment. Each user appears in one list at most."""

    satisfied: bool
    count: int
    needed: int
    approved_by: tuple[str, ...] = ()  # counted, sorted
    rejected_by: tuple[str, ...] = ()  # eligible users whose vote is reject
    expired: tuple[str, ...] = ()  # whose latest decision is older than expires_after
    void: tuple[str, ...] = ()  # whose only decisions are about another candidate
    barred: tuple[str, ...] = ()  # approved but may not (separation of duties)
    ineligible: tuple[str, ...] = ()  # not named by the rule
    valid_until: datetime | None = None  # when the first counted approval expires
    approvers: str = field(default="", compare=False)

    @property
    def rejected(self) -> bool:
        return bool(self.rejected_by)

    @property
    def missing(self) -> int:
        return max(0, self.needed - self.count)

    def describe(self) -> str:
        if self.rejected:
            return f"rejected by {', '.join(self.rejected_by)}"
        if self.satisfied:
            return f"approved by {', '.join(self.approved_by)}"
        noun = "approval" if self.missing == 1 else "approvals"
        text = f"needs {self.missing} more {noun} ({self.count} of {self.needed}"
        text += f") from {self.approvers}" if self.approvers else ")"
        aside = [
            f"{label}: {', '.join(users)}"
            for label, users in (
                ("expired", self.expired),
                ("for another candidate", self.void),
                ("not allowed to approve", self.barred),
            )
            if users
        ]
        return text + (f" ({'; '.join(aside)})" if aside else "")


def evaluate_approvals(
    rule: ApprovalRule,
    approvals: Iterable[Approval],
    candidate: str,
    now: datetime,
    barred_users: Mapping[str, str] | Collection[str] = (),
) -> ApprovalVerdict:
    """Count the decisions that hold for deploying ``candidate`` at ``now``."""
    now_utc = require_aware(now)
    barred = {_key(u) for u in barred_users}
    latest: dict[str, Approval] = {}
    void: set[str] = set()
    for approval in approvals:
        at = require_aware(approval.decided_at, "decided_at")
        if at > now_utc:
            continue  # not decided yet at `now` (replaying history)
        if approval.candidate != candidate:
            void.add(approval.user)
            continue
        mine = latest.get(_key(approval.user))
        if mine is None or (at, approval.decision is Decision.REJECT) > (
            require_aware(mine.decided_at),
            mine.decision is Decision.REJECT,
        ):
            latest[_key(approval.user)] = approval  # latest wins; at the same instant a reject wins
    approved: list[str] = []
    rejected: list[str] = []
    expired: list[str] = []
    barred_hits: list[str] = []
    ineligible: list[str] = []
    expiries: list[datetime] = []
    for vote in latest.values():
        user = vote.user
        if not rule.admits(user, vote.roles):
            ineligible.append(user)
            continue
        if rule.expires_after is not None:
            ends = require_aware(vote.decided_at) + rule.expires_after
            if now_utc >= ends:
                expired.append(user)
                continue
        else:
            ends = None
        if vote.decision is Decision.REJECT:
            rejected.append(user)
        elif _key(user) in barred:
            barred_hits.append(user)
        else:
            approved.append(user)
            if ends is not None:
                expiries.append(ends)
    count = len(approved)
    return ApprovalVerdict(
        satisfied=count >= rule.required and not rejected,
        count=count,
        needed=rule.required,
        approved_by=tuple(sorted(approved)),
        rejected_by=tuple(sorted(rejected)),
        expired=tuple(sorted(expired)),
        void=tuple(sorted(u for u in void if _key(u) not in latest)),
        barred=tuple(sorted(barred_hits)),
        ineligible=tuple(sorted(ineligible)),
        valid_until=min(expiries) if expiries else None,
        approvers=rule.describe_approvers(),
    )


def _key(user: str) -> str:
    """How a person's name or email is compared: case-insensitively."""
    return user.strip().casefold()


def barred_reason(barred: Mapping[str, str] | Collection[str], user: str) -> str | None:
    """Why ``user`` may not approve (None: they may), matching names case-insensitively."""
    for name in barred:
        if _key(name) == _key(user):
            return barred[name] if isinstance(barred, Mapping) else "is barred"
    return None


def barred_users(
    candidate: str,
    *,
    cut_by: str,
    picked_by: Iterable[str] = (),
    authors: Iterable[str] = (),
    allow_authors: bool = False,
    requested_by: str | None = None,
) -> dict[str, str]:
    """Who may not approve deploying ``candidate``, each with the reason as a verb phrase.

    ``authors`` are the authors of the commits the deployment would bring into the environment
    (the services compute them from git: current candidate there .. this candidate).
    ``requested_by`` bars the requester too, when the services want it (GitLab's default).
    """
    barred: dict[str, str] = {}
    if allow_authors:
        authors = ()
    reasons = [
        ((cut_by,), f"cut {candidate}"),
        (tuple(picked_by), f"picked a commit into {candidate}"),
        ((requested_by,) if requested_by else (), f"asked to deploy {candidate}"),
        (tuple(authors), f"wrote commits in {candidate}"),
    ]
    for users, reason in reasons:
        for user in users:
            if user:
                barred.setdefault(user, reason)
    return barred


def check_can_approve(
    rule: ApprovalRule,
    *,
    user: str,
    roles: Iterable[str],
    candidate: str,
    environment: str,
    barred_users: Mapping[str, str] | Collection[str] = (),
    decision: Decision = Decision.APPROVE,
) -> None:
    """Refuse a decision the rule would not count; call before recording it.

    PERMISSION_DENIED: the rule does not name the user. SEPARATION_OF_DUTIES: the user is barred
    from approving (rejecting stays allowed).
    """
    if not rule.admits(user, roles):
        raise PermissionDenied(
            f"{user} is not an approver for {environment} (approvers: {rule.describe_approvers()})",
            details={"user": user, "environment": environment, "approvers": list(rule.approvers)},
        )
    reason = barred_reason(barred_users, user)
    if decision is Decision.APPROVE and reason is not None:
        why = reason if isinstance(barred_users, Mapping) else f"is barred from {candidate}"
        raise RefusedError(
            f"{user} {why} and may not approve its deployment to {environment}",
            code=ErrorCode.SEPARATION_OF_DUTIES,
            hint="ask another approver"
            + ("" if rule.allow_authors else "; commit authors may not approve"),
            details={
                "user": user,
                "candidate": candidate,
                "environment": environment,
                "reason": why,
            },
        )
