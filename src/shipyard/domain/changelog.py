"""Changelog entries parsed from commit subjects: conventional-commit type and PR number."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from shipyard.domain.commits import Commit

_CONVENTIONAL = re.compile(r"^(?P<type>[a-zA-Z]+)(?:\((?P<scope>[^)]*)\))?(?P<bang>!)?:\s+\S")
_PR_SUFFIX = re.compile(r"\(#(?P<n>\d+)\)\s*$")
_PR_MERGE = re.compile(r"^Merge pull request #(?P<n>\d+)\b")
_MR_MERGE = re.compile(r"See merge request [^!\s]*!(?P<n>\d+)")


@dataclass(frozen=True, slots=True)
class ChangelogEntry:
    sha: str
    subject: str
    author: str
    author_email: str
    pr: int | None
    type: str | None  # conventional-commit type, lower-case: feat, fix, chore, ...
    scope: str | None
    breaking: bool
    picked: bool = False  # cherry-picked onto the release branch, not cut from mainline


def parse_pr_number(subject: str, body: str = "") -> int | None:
    for pattern, text in ((_PR_SUFFIX, subject), (_PR_MERGE, subject), (_MR_MERGE, body)):
        m = pattern.search(text)
        if m:
            return int(m.group("n"))
    return None


def entry_for(commit: Commit, *, picked: bool = False) -> ChangelogEntry:
    m = _CONVENTIONAL.match(commit.subject)
    breaking = bool(m and m.group("bang")) or "BREAKING CHANGE:" in commit.body
    return ChangelogEntry(
        sha=commit.sha,
        subject=commit.subject,
        author=commit.author_name,
        author_email=commit.author_email,
        pr=parse_pr_number(commit.subject, commit.body),
        type=m.group("type").lower() if m else None,
        scope=(m.group("scope") or None) if m else None,
        breaking=breaking,
        picked=picked,
    )


def build_changelog(commits: Iterable[Commit], *, picked: bool = False) -> list[ChangelogEntry]:
    return [entry_for(c, picked=picked) for c in commits]
