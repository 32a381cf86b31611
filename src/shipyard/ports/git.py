"""The git port: everything release management asks of a repository, never touching a working copy."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipyard.domain.changelog import ChangelogEntry
from shipyard.domain.commits import Commit

__all__ = ["Commit", "GitRepository", "Identity", "PickPlan", "PickedCommit"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a commit made by Shipyard (a cherry-pick) is committed as."""

    name: str
    email: str


@dataclass(frozen=True, slots=True)
class PickedCommit:
    source_sha: str
    new_sha: str


@dataclass(frozen=True, slots=True)
class PickPlan:
    """Commits written to the object store but not yet on the branch; ``apply_pick`` publishes them."""

    branch: str
    old_tip: str
    new_tip: str
    picked: tuple[PickedCommit, ...]


class GitRepository(Protocol):
    """A project's repository. Raises NotFoundError(UNKNOWN_SHA), ConflictError(PICK_CONFLICT), AdapterError."""

    def refresh(self) -> None:
        """Fetch from the remote when the project is a URL; a no-op for a local path."""

    def resolve(self, rev: str) -> str:
        """Full SHA of a commit-ish; NotFoundError(code=UNKNOWN_SHA) when it does not name a commit."""

    def branch_tip(self, branch: str) -> str | None: ...

    def is_ancestor(self, ancestor: str, descendant: str) -> bool: ...

    def log(self, until: str, since: str | None = None) -> list[Commit]:
        """Commits reachable from ``until`` but not from ``since``, newest first."""

    def changelog(
        self,
        until: str,
        since: str | None = None,
        *,
        limit: int | None = None,
        picked: bool = False,
    ) -> list[ChangelogEntry]:
        """The entries of ``log(until, since)``, at most ``limit`` (the newest), read straight
        from git's output: no ``Commit`` in between."""

    def authors(self, until: str, since: str | None = None) -> set[tuple[str, str]]:
        """(name, email) of the authors of ``log(until, since)``, both as written in the commits
        and as the repository's ``.mailmap`` (at ``until``) maps them: one person, every address."""

    def missing_changes(self, upstream: str, head: str, base: str) -> list[str]:
        """Commits in base..head whose change (ancestry or patch-id) is not in ``upstream``."""

    def create_branch(self, branch: str, sha: str) -> None:
        """Create a branch; ConflictError when it exists already."""

    def delete_branch(self, branch: str, expected_sha: str) -> None:
        """Compensation for a failed transaction; only deletes when the tip is still ``expected_sha``."""

    def plan_pick(self, branch: str, shas: Sequence[str], committer: Identity) -> PickPlan:
        """Cherry-pick into new objects without moving the branch; ConflictError(PICK_CONFLICT,
        details={"files": [...], "sha": ...}) on a conflict, ConflictError(ALREADY_PICKED) when a
        commit (or its patch) is on the branch already."""

    def apply_pick(self, plan: PickPlan) -> None:
        """Move the branch from old_tip to new_tip atomically (compare-and-swap)."""

    def revert_pick(self, plan: PickPlan) -> None:
        """Move the branch back from new_tip to old_tip (compensation)."""

    def read_file(self, sha: str, path: str) -> bytes | None: ...

    def checkout(self, sha: str) -> AbstractContextManager[Path]:
        """A clean, temporary worktree of ``sha``, removed on exit; never the user's working copy."""


def iter_shas(commits: Sequence[Commit]) -> Iterator[str]:
    return (c.sha for c in commits)
