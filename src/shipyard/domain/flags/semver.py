"""Strict SemVer 2.0 parsing and precedence, as Unleash's SEMVER_* operators need.

No ``v`` prefix, no partial versions: anything else is invalid and the constraint is false.
"""

from __future__ import annotations

import re

__all__ = ["SemverKey", "semver_key"]

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

Identifier = tuple[int, int, str]
SemverKey = tuple[int, int, int, int, tuple[Identifier, ...]]


def semver_key(text: str) -> SemverKey | None:
    """A tuple that sorts by SemVer precedence, or ``None`` if ``text`` is not strict SemVer.

    A release sorts after its pre-releases; numeric identifiers sort before alphanumeric ones;
    build metadata is ignored.
    """
    m = _SEMVER.match(text)
    if m is None:
        return None
    major, minor, patch, pre = int(m[1]), int(m[2]), int(m[3]), m[4]
    if pre is None:
        return (major, minor, patch, 1, ())
    idents = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, 0, idents)
