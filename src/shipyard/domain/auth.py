"""Roles and what each may do; checked by the services, never by the faces."""

from __future__ import annotations

from enum import StrEnum

from shipyard.errors import InvalidError, PermissionDenied


class Role(StrEnum):
    VIEWER = "viewer"
    DEPLOYER = "deployer"
    APPROVER = "approver"
    ADMIN = "admin"
    APP = "app"  # an application: reads its flags and reports its cohort metrics


class Action(StrEnum):
    READ = "read"
    RELEASE = "release"  # cut, pick, register artifacts
    DEPLOY = "deploy"
    APPROVE = "approve"
    ADMINISTER = "administer"  # projects, tokens
    REPORT = "report"  # send cohort metrics, which rollout verdicts are judged on


_ALLOWED: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    # reporting is kept apart from reading: a person with a viewer token must not be able to
    # skew a flag-routed canary's verdict by posting counts
    Role.APP: frozenset({Action.READ, Action.REPORT}),
    Role.DEPLOYER: frozenset({Action.READ, Action.RELEASE, Action.DEPLOY}),
    Role.APPROVER: frozenset({Action.READ, Action.APPROVE}),
    Role.ADMIN: frozenset(Action),
}


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InvalidError(f"unknown role {text!r}; use one of: {names}") from None


def require(role: Role, action: Action, *, user: str) -> None:
    if action not in _ALLOWED[role]:
        raise PermissionDenied(f"{user} ({role.value}) may not {action.value}")


class Actor:
    """Who is acting: every state change records it in its event."""

    __slots__ = ("role", "user")

    def __init__(self, user: str, role: Role) -> None:
        self.user = user
        self.role = role

    def require(self, action: Action) -> None:
        require(self.role, action, user=self.user)

    def __repr__(self) -> str:
        return f"Actor({self.user!r}, {self.role.value})"


SYSTEM = Actor("shipyard", Role.ADMIN)
