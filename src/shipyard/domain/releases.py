"""Projects, releases, candidates and the rules for cutting and picking.

A candidate is immutable once built: its SHA, artifacts and config snapshot never change.
Rules here decide; the services do the git and database work around them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shipyard.errors import ConflictError, ErrorCode, RefusedError


class CandidateStatus(StrEnum):
    BUILDING = "building"
    AWAITING_ARTIFACTS = "awaiting_artifacts"  # no build command: external CI registers artifacts
    BUILT = "built"
    FAILED = "failed"


DEPLOYABLE = frozenset({CandidateStatus.BUILT})


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    source: str  # path or URL as the user gave it
    mainline: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Release:
    id: int
    project_id: int
    version: str
    branch: str
    base_sha: str  # the mainline commit it was cut from
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    digest: str
    size: int | None
    uri: str | None


@dataclass(frozen=True, slots=True)
class Pick:
    source_sha: str
    new_sha: str


@dataclass(frozen=True, slots=True)
class Veto:
    """Who marked a candidate bad, when and why: it is never deployed again."""

    by: str
    at: datetime
    reason: str


VETOED = "vetoed"  # the status a vetoed candidate shows, whatever its build status


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    release_id: int
    name: str
    number: int
    sha: str
    status: CandidateStatus
    created_by: str
    created_at: datetime
    config_text: str  # shipyard.yaml at this SHA, "" when absent
    build_log: str | None = None  # location of the build log
    reason: str = ""  # why it failed
    built_at: datetime | None = None
    artifacts: tuple[Artifact, ...] = ()
    picks: tuple[Pick, ...] = field(default=())
    veto: Veto | None = None

    @property
    def deployable(self) -> bool:
        return self.status in DEPLOYABLE and self.veto is None

    @property
    def shown_status(self) -> str:
        """What faces show: ``vetoed`` wins over the build status (which stays in ``status``)."""
        return VETOED if self.veto is not None else self.status.value


def release_branch(version: str) -> str:
    return f"release/{version}"


def check_version_free(version: str, existing: Sequence[str]) -> None:
    if version in existing:
        raise ConflictError(
            f"release {version} already exists",
            code=ErrorCode.VERSION_EXISTS,
            hint="pick fixes onto it with `shipyard release pick`, or choose another --version",
        )


def check_on_mainline(sha: str, mainline: str, on_mainline: bool) -> None:
    if not on_mainline:
        raise RefusedError(
            f"commit {sha[:12]} is not on the mainline {mainline!r}",
            code=ErrorCode.NOT_ON_MAINLINE,
            hint="releases are cut from mainline commits; merge it first",
        )


def check_picks_carried(missing: Mapping[str, Sequence[str]], *, allow: bool) -> None:
    """A later release must contain every fix picked into earlier ones, or the fix regresses."""
    lost = {v: list(shas) for v, shas in missing.items() if shas}
    if not lost or allow:
        return
    parts = [f"{v}: {', '.join(s[:12] for s in shas)}" for v, shas in sorted(lost.items())]
    raise RefusedError(
        "the commit does not contain fixes picked into earlier releases (" + "; ".join(parts) + ")",
        code=ErrorCode.MISSING_PICK,
        hint="land the fixes on the mainline first, or pass --allow-missing-pick",
        details={"missing": lost},
    )


def next_candidate_number(existing: Sequence[Candidate]) -> int:
    return max((c.number for c in existing), default=0) + 1
