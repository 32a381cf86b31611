"""Target kinds by name: the one place that knows which classes exist."""

from __future__ import annotations

from shipyard.adapters.targets.command import CommandTarget
from shipyard.adapters.targets.local import LocalTarget
from shipyard.errors import InvalidError
from shipyard.ports.targets import DeployTarget

TARGETS: dict[str, type[DeployTarget]] = {cls.kind: cls for cls in (CommandTarget, LocalTarget)}
"""What users are offered; a test suite adds the memory target with ``register_target``."""


def register_target(cls: type[DeployTarget]) -> None:
    """Make one more kind available (a plugin's, or a test's in-memory twin)."""
    TARGETS[cls.kind] = cls


def make_target(kind: str) -> DeployTarget:
    """A new target of this kind; InvalidError names the known kinds when there is none."""
    cls = TARGETS.get(kind)
    if cls is None:
        known = ", ".join(sorted(TARGETS))
        raise InvalidError(f"unknown target kind {kind!r}; known: {known}")
    return cls()


class TargetRegistry:
    """One instance per kind per server, so a target can supervise what it started."""

    def __init__(self) -> None:
        self._made: dict[str, DeployTarget] = {}

    def __call__(self, kind: str) -> DeployTarget:
        if kind not in self._made:
            self._made[kind] = make_target(kind)
        return self._made[kind]

    def close(self) -> None:
        for target in self._made.values():
            target.close()
