"""Environments as the domain sees them: promotion order and gates, independent of the YAML schema.

The services map ``shipyard.yaml`` (the candidate's snapshot) to these values; the rules in
``gates`` and ``deployments`` read only these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shipyard.domain.approvals import ApprovalRule
from shipyard.domain.freezes import FreezeWindow
from shipyard.errors import InvalidError, NotFoundError

__all__ = ["EnvironmentRules", "Requires", "check_environments", "environment_named", "in_order"]


@dataclass(frozen=True, slots=True)
class Requires:
    """The candidate must have succeeded in ``at_least`` of ``envs`` (0 means all of them)."""

    envs: tuple[str, ...] = ()
    at_least: int = 0

    def __post_init__(self) -> None:
        if len(set(self.envs)) != len(self.envs):
            raise InvalidError(f"requires lists an environment twice: {', '.join(self.envs)}")
        if not 0 <= self.at_least <= len(self.envs):
            raise InvalidError(
                f"requires.at_least must be between 0 and {len(self.envs)}, got {self.at_least}",
                details={"at_least": self.at_least, "envs": list(self.envs)},
            )

    @property
    def needed(self) -> int:
        return self.at_least or len(self.envs)


@dataclass(frozen=True, slots=True)
class EnvironmentRules:
    name: str
    order: int  # position in promotion order, 0 first
    requires: Requires = Requires()
    approval: ApprovalRule | None = None
    freezes: tuple[FreezeWindow, ...] = ()
    rollback_during_freeze: bool = True
    auto_promote: bool = False  # continuous deployment: deploy when the requires are met
    single_step: bool = False  # a newly built candidate deploys here at once (release + deploy)
    protected: bool = False  # production: a second person approves deployments and flag changes

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidError("an environment needs a name")
        if self.name in self.requires.envs:
            raise InvalidError(
                f"environment {self.name} requires itself", details={"environment": self.name}
            )


def in_order(envs: Iterable[EnvironmentRules]) -> list[EnvironmentRules]:
    return sorted(envs, key=lambda e: (e.order, e.name))


def environment_named(envs: Sequence[EnvironmentRules], name: str) -> EnvironmentRules:
    for env in envs:
        if env.name == name:
            return env
    known = ", ".join(e.name for e in in_order(envs))
    raise NotFoundError(
        f"unknown environment {name!r}; known: {known or 'none'}",
        details={"environment": name, "known": [e.name for e in in_order(envs)]},
    )


def check_environments(envs: Sequence[EnvironmentRules]) -> None:
    """Names unique, requires name known and earlier environments (so promotion has no cycles)."""
    seen: dict[str, EnvironmentRules] = {}
    for env in envs:
        if env.name in seen:
            raise InvalidError(
                f"environment {env.name} is declared twice", details={"environment": env.name}
            )
        seen[env.name] = env
    for env in envs:
        for need in env.requires.envs:
            other = seen.get(need)
            if other is None:
                raise InvalidError(
                    f"environment {env.name} requires unknown environment {need}",
                    details={"environment": env.name, "requires": need},
                )
            if other.order >= env.order:
                raise InvalidError(
                    f"environment {env.name} requires {need}, which does not come before it",
                    details={"environment": env.name, "requires": need},
                )
