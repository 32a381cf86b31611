from datetime import UTC, datetime

import pytest

from shipyard.domain.changelog import entry_for, parse_pr_number
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
