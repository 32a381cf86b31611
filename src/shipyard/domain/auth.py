"""Roles and what each may do; checked by the services, never by the faces.

A token's role can be scoped to projects and environments (GitLab's protected environments): a
staging deployer changes nothing in production. Reading is never scoped. An actor is also known
by the emails of its user, so commit authors are recognised whatever address they used.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    """Who is acting: every state change records it in its event.

    ``projects`` / ``environments``: where the role holds (empty: everywhere)."""

    __slots__ = ("emails", "environments", "projects", "role", "user")

    def __init__(
        self,
        user: str,
        role: Role,
        *,
        emails: Iterable[str] = (),
        projects: Iterable[str] = (),
        environments: Iterable[str] = (),
    ) -> None:
        self.user = user
        self.role = role
        self.emails = frozenset(e.strip().casefold() for e in emails if e.strip())
        self.projects = frozenset(projects)
        self.environments = frozenset(environments)

    def allows(self, action: Action) -> bool:
        """Whether the role allows ``action`` somewhere (scope aside)."""
        return action in _ALLOWED[self.role]

    @property
    def scoped(self) -> bool:
        return bool(self.projects or self.environments)

    def in_scope(self, project: str | None = None, environment: str | None = None) -> bool:
        """Whether the role holds in ``project`` / ``environment`` (None: not about one)."""
        if project is not None and self.projects and project not in self.projects:
            return False
        return environment is None or not self.environments or environment in self.environments

    def require(
        self, action: Action, *, project: str | None = None, environment: str | None = None
    ) -> None:
        """Refuse ``action`` the role does not allow, or outside the token's scope."""
        require(self.role, action, user=self.user)
        if action is Action.READ or self.in_scope(project, environment):
            return
        where = "/".join(x for x in (project, environment) if x)
        scope = "; ".join(
            f"{label} {', '.join(sorted(names))}"
            for label, names in (("projects", self.projects), ("environments", self.environments))
            if names
        )
        raise PermissionDenied(
            f"{self.user} ({self.role.value}) may not {action.value} in {where}: "
            f"the token is scoped to {scope}",
            details={
                "projects": sorted(self.projects),
                "environments": sorted(self.environments),
            },
        )

    def __repr__(self) -> str:
        return f"Actor({self.user!r}, {self.role.value})"


SYSTEM = Actor("shipyard", Role.ADMIN)
