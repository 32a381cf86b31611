"""Version schemes: semver and calver, and how the next release version is chosen."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import total_ordering

from shipyard.errors import InvalidError


class Scheme(StrEnum):
    SEMVER = "semver"
    CALVER = "calver"


class Bump(StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_CALVER = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})(?:\.([1-9]\d*))?$")


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A release version; candidates add ``-rc.N`` to it, so it never carries a pre-release part."""

    scheme: Scheme
    parts: tuple[int, ...]

    def __str__(self) -> str:
        if self.scheme is Scheme.CALVER:
            y, m, d, n = self.parts
            base = f"{y:04d}.{m:02d}.{d:02d}"
            return base if n == 0 else f"{base}.{n}"
        return ".".join(str(p) for p in self.parts)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts < other.parts


def parse_version(text: str, scheme: Scheme) -> Version:
    """Parse a user-given version; a clear error names the expected shape."""
    if scheme is Scheme.SEMVER:
        m = _SEMVER.match(text)
        if not m:
            raise InvalidError(f"version {text!r} is not semver MAJOR.MINOR.PATCH (e.g. 1.4.0)")
        return Version(scheme, tuple(int(g) for g in m.groups()))
    m = _CALVER.match(text)
    if not m:
        raise InvalidError(f"version {text!r} is not calver YYYY.MM.DD[.N] (e.g. 2026.11.22)")
    y, mo, d, n = m.groups()
    try:
        date(int(y), int(mo), int(d))
    except ValueError as exc:
        raise InvalidError(f"version {text!r} is not a real calendar date") from exc
    return Version(scheme, (int(y), int(mo), int(d), int(n or 0)))


def parse_existing(texts: Iterable[str], scheme: Scheme) -> list[Version]:
    """Versions of earlier releases; ones that do not fit the scheme (a scheme change) are skipped."""
    out: list[Version] = []
    for t in texts:
        try:
            out.append(parse_version(t, scheme))
        except InvalidError:
            continue
    return out


def next_version(
    scheme: Scheme,
    existing: Iterable[Version],
    *,
    today: date,
    bump: Bump = Bump.MINOR,
    initial: str = "0.1.0",
) -> Version:
    """The version a new release gets when the user names none."""
    versions = sorted(v for v in existing if v.scheme is scheme)
    if scheme is Scheme.CALVER:
        same_day = [v for v in versions if v.parts[:3] == (today.year, today.month, today.day)]
        n = 0 if not same_day else max(v.parts[3] for v in same_day) + 1
        return Version(scheme, (today.year, today.month, today.day, n))
    if not versions:
        return parse_version(initial, scheme)
    major, minor, patch = versions[-1].parts
    if bump is Bump.MAJOR:
        return Version(scheme, (major + 1, 0, 0))
    if bump is Bump.MINOR:
        return Version(scheme, (major, minor + 1, 0))
    return Version(scheme, (major, minor, patch + 1))


def candidate_name(version: str, number: int) -> str:
    return f"{version}-rc.{number}"


_CANDIDATE = re.compile(r"^(?P<version>.+)-rc\.(?P<n>[1-9]\d*)$")


def split_candidate_name(name: str) -> tuple[str, int]:
    """``1.4.0-rc.2`` -> ("1.4.0", 2); raises InvalidError for anything else."""
    m = _CANDIDATE.match(name)
    if not m:
        raise InvalidError(f"{name!r} is not a candidate name like 1.4.0-rc.1")
    return m.group("version"), int(m.group("n"))
