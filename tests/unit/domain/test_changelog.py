from datetime import UTC, datetime

import pytest

from shipyard.domain.changelog import (
    build_changelog,
    changelog_entries,
    entry_for,
    parse_pr_number,
)
from shipyard.domain.commits import Commit


def commit(subject: str, body: str = "") -> Commit:
    return Commit(
        "a" * 40, (), "Ada", "ada@example.com", datetime(2026, 1, 1, tzinfo=UTC), subject, body
    )


@pytest.mark.parametrize(
    ("subject", "body", "pr"),
    [
        ("fix: handle empty cart (#123)", "", 123),
        ("Merge pull request #45 from ada/feature", "", 45),
        ("Merge branch 'x' into 'main'", "See merge request group/app!77", 77),
        ("feat: no number", "", None),
        ("refs #9 in the middle (not a suffix)", "", None),
    ],
)
def test_pr_numbers_come_from_squash_suffixes_and_merge_subjects(
    subject: str, body: str, pr: int | None
) -> None:
    assert parse_pr_number(subject, body) == pr


def test_conventional_commit_fields() -> None:
    e = entry_for(commit("feat(api)!: drop v0 endpoints (#7)"))
    assert (e.type, e.scope, e.breaking, e.pr) == ("feat", "api", True, 7)
    e = entry_for(commit("Fix: typo", "BREAKING CHANGE: renamed flag"))
    assert (e.type, e.scope, e.breaking) == ("fix", None, True)
    e = entry_for(commit("Update README"))
    assert (e.type, e.breaking) == (None, False)
    e = entry_for(commit("fix:no space is not conventional"))
    assert e.type is None


def test_entries_from_log_records_match_entries_from_commits() -> None:
    samples = [
        ("feat(api)!: drop v0 endpoints (#7)", ""),
        ("Fix: typo", "BREAKING CHANGE: renamed flag"),
        ("Merge pull request #45 from ada/feature", "Wishlist\n"),
        ("Merge branch 'x' into 'main'", "See merge request group/app!77\n"),
        ("chore(): empty scope (#8)  ", ""),
        ("Update README", ""),
    ]
    commits = [commit(s, b) for s, b in samples]
    records = [(c.sha, c.author_name, c.author_email, c.subject, c.body) for c in commits]
    for picked in (False, True):
        expected = [entry_for(c, picked=picked) for c in commits]
        assert changelog_entries(records, picked=picked) == expected
        assert build_changelog(commits, picked=picked) == expected
    assert [(e.pr, e.type, e.scope, e.breaking) for e in changelog_entries(records)] == [
        (7, "feat", "api", True),
        (None, "fix", None, True),
        (45, None, None, False),
        (77, None, None, False),
        (8, "chore", None, False),
        (None, None, None, False),
    ]
