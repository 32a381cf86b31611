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
_BREAKING = "BREAKING CHANGE:"


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


def changelog_entries(
    records: Iterable[tuple[str, str, str, str, str]], *, picked: bool = False
) -> list[ChangelogEntry]:
    """Entries from ``(sha, author, author_email, subject, body)`` records, as ``git log`` prints
    them. One loop with the patterns bound locally: a changelog can hold thousands of commits."""
    conventional, pr_suffix = _CONVENTIONAL.match, _PR_SUFFIX.search
    pr_merge, mr_merge = _PR_MERGE.search, _MR_MERGE.search
    entries: list[ChangelogEntry] = []
    append = entries.append
    for sha, author, email, subject, body in records:
        m = pr_suffix(subject) or pr_merge(subject) or (mr_merge(body) if body else None)
        pr = int(m["n"]) if m else None
        c = conventional(subject)
        if c is None:
            kind = scope = None
            breaking = _BREAKING in body
        else:
            kind, scope, bang = c.groups()  # type, scope, bang: one call, not three
            kind, scope = kind.lower(), scope or None
            breaking = bang is not None or _BREAKING in body
        append(ChangelogEntry(sha, subject, author, email, pr, kind, scope, breaking, picked))
    return entries


def entry_for(commit: Commit, *, picked: bool = False) -> ChangelogEntry:
    return build_changelog((commit,), picked=picked)[0]


def build_changelog(commits: Iterable[Commit], *, picked: bool = False) -> list[ChangelogEntry]:
    return changelog_entries(
        ((c.sha, c.author_name, c.author_email, c.subject, c.body) for c in commits), picked=picked
    )
