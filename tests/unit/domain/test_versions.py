from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.domain.versions import (
    Bump,
    Scheme,
    candidate_name,
    next_version,
    parse_existing,
    parse_version,
    split_candidate_name,
)
from shipyard.errors import InvalidError

TODAY = date(2026, 11, 22)


def semvers(*texts: str) -> list:
    return [parse_version(t, Scheme.SEMVER) for t in texts]


def test_first_semver_release_uses_the_initial_version() -> None:
    assert str(next_version(Scheme.SEMVER, [], today=TODAY)) == "0.1.0"
    assert str(next_version(Scheme.SEMVER, [], today=TODAY, initial="1.0.0")) == "1.0.0"


@pytest.mark.parametrize(
    ("bump", "expected"), [(Bump.MAJOR, "2.0.0"), (Bump.MINOR, "1.5.0"), (Bump.PATCH, "1.4.3")]
)
def test_semver_bumps_from_the_highest_version_not_the_newest(bump: Bump, expected: str) -> None:
    existing = semvers("1.4.2", "0.9.0", "1.3.7")
    assert str(next_version(Scheme.SEMVER, existing, today=TODAY, bump=bump)) == expected


def test_semver_orders_numerically() -> None:
    assert parse_version("1.10.0", Scheme.SEMVER) > parse_version("1.9.0", Scheme.SEMVER)


def test_calver_counts_releases_of_the_same_day() -> None:
    first = next_version(Scheme.CALVER, [], today=TODAY)
    assert str(first) == "2026.11.22"
    second = next_version(Scheme.CALVER, [first], today=TODAY)
    assert str(second) == "2026.11.22.1"
    third = next_version(Scheme.CALVER, [first, second], today=TODAY)
    assert str(third) == "2026.11.22.2"
    assert str(next_version(Scheme.CALVER, [first, second], today=date(2026, 11, 23))) == (
        "2026.11.23"
    )


@pytest.mark.parametrize(
    ("text", "scheme", "message"),
    [
        ("1.4", Scheme.SEMVER, "is not semver"),
        ("v1.4.0", Scheme.SEMVER, "is not semver"),
        ("01.4.0", Scheme.SEMVER, "is not semver"),
        ("1.4.0-rc.1", Scheme.SEMVER, "is not semver"),
        ("2026.13.01", Scheme.CALVER, "not a real calendar date"),
        ("2026.1.1", Scheme.CALVER, "is not calver"),
    ],
)
def test_bad_versions_are_refused_with_the_expected_shape(
    text: str, scheme: Scheme, message: str
) -> None:
    with pytest.raises(InvalidError, match=message):
        parse_version(text, scheme)


def test_versions_of_another_scheme_are_ignored_when_choosing_the_next() -> None:
    existing = parse_existing(["2026.01.01", "1.2.0"], Scheme.SEMVER)
    assert [str(v) for v in existing] == ["1.2.0"]


def test_candidate_names_round_trip() -> None:
    assert candidate_name("1.4.0", 2) == "1.4.0-rc.2"
    assert split_candidate_name("2026.11.22.1-rc.12") == ("2026.11.22.1", 12)
    with pytest.raises(InvalidError):
        split_candidate_name("1.4.0-rc.0")


@given(st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)))
def test_semver_text_round_trips(parts: tuple[int, int, int]) -> None:
    text = ".".join(map(str, parts))
    assert str(parse_version(text, Scheme.SEMVER)) == text


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)), max_size=8))
def test_next_semver_is_always_new_and_highest(existing: list[tuple[int, int, int]]) -> None:
    versions = semvers(*{".".join(map(str, p)) for p in existing})
    for bump in Bump:
        nxt = next_version(Scheme.SEMVER, versions, today=TODAY, bump=bump)
        assert all(v < nxt for v in versions)
