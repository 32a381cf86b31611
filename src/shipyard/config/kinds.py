"""The target and router kinds a user may name in shipyard.yaml.

The closed sets users are offered are the enums; the JSON schema and every message list only
those. ``accept_target_kind`` lets a plugin or a test suite (the in-memory target) make one more
kind acceptable without ever offering it."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RouterKind", "TargetKind", "accept_target_kind", "check_target_kind"]


class TargetKind(StrEnum):
    LOCAL = "local"
    COMMAND = "command"


class RouterKind(StrEnum):
    HAPROXY = "haproxy"


_ACCEPTED: set[str] = set()


def accept_target_kind(kind: str) -> None:
    """Accept ``kind`` in shipyard.yaml from now on (it stays unlisted)."""
    _ACCEPTED.add(kind)


def check_target_kind(kind: str) -> str:
    if kind in TargetKind.__members__.values() or kind in _ACCEPTED:
        return kind
    known = ", ".join(k.value for k in TargetKind)
    raise ValueError(f"unknown target kind {kind!r}; known: {known}")
