"""Freeze windows on a fake clock, including both DST changes in Europe/Berlin and America/New_York."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.domain.freezes import (
    OneOffFreeze,
    RecurringFreeze,
    active_freeze,
    active_freezes,
    next_unfrozen,
)
from shipyard.errors import InvalidError

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKEND = RecurringFreeze("0 18 * * 5", timedelta(hours=63), "Europe/Berlin", reason="weekend")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("now", "frozen"),
    [
        (berlin(2026, 3, 27, 17, 59), False),
        (berlin(2026, 3, 27, 18, 0), True),  # Friday 18:00 CET
        (berlin(2026, 3, 29, 1, 59), True),  # just before clocks go forward
        (berlin(2026, 3, 29, 3, 0), True),  # just after: 02:00 CET is 03:00 CEST
        (berlin(2026, 3, 30, 8, 59), True),
        (berlin(2026, 3, 30, 9, 0), False),  # Monday 09:00 CEST: wall-clock end holds
        (berlin(2026, 4, 1, 12, 0), False),
    ],
)
def test_weekend_freeze_across_spring_forward(now: datetime, frozen: bool) -> None:
    hit = active_freeze([WEEKEND], now)
    assert (hit is not None) is frozen
    if hit is not None:
        assert hit.since == utc(2026, 3, 27, 17, 0)
        assert hit.until == utc(2026, 3, 30, 7, 0)  # 09:00 CEST
        assert hit.until - hit.since == timedelta(hours=62)  # one hour lost to the change
        assert hit.reason == "weekend"


@pytest.mark.parametrize(
    ("now", "frozen"),
    [
        (berlin(2026, 10, 23, 17, 59), False),
        (berlin(2026, 10, 23, 18, 0), True),  # Friday 18:00 CEST
        (datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0), True),  # first 02:30 (CEST)
        (datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1), True),  # second 02:30 (CET)
        (berlin(2026, 10, 26, 8, 59), True),
        (berlin(2026, 10, 26, 9, 0), False),
    ],
)
def test_weekend_freeze_across_fall_back(now: datetime, frozen: bool) -> None:
    hit = active_freeze([WEEKEND], now)
    assert (hit is not None) is frozen
    if hit is not None:
        assert hit.since == utc(2026, 10, 23, 16, 0)
        assert hit.until == utc(2026, 10, 26, 8, 0)  # 09:00 CET
        assert hit.until - hit.since == timedelta(hours=64)


def test_a_window_that_started_long_before_now_counts() -> None:
    # a monthly freeze lasting 10 days, asked on its 9th day
    month_end = RecurringFreeze("0 0 25 * *", timedelta(days=10), "UTC")
    hit = active_freeze([month_end], utc(2026, 1, 3, 12, 0))
    assert hit is not None
    assert hit.since == utc(2025, 12, 25)
    assert hit.until == utc(2026, 1, 4)
    assert active_freeze([month_end], utc(2026, 1, 4)) is None


def test_a_start_inside_the_spring_gap_lands_after_it() -> None:
    nightly = RecurringFreeze("30 2 * * *", timedelta(hours=1), "Europe/Berlin")
    # 02:30-03:30 on 2026-03-29: 02:30 does not exist, the start is read as early as it can be
    # (01:30 CET = 00:30 UTC) and the end as late (03:30 CEST = 01:30 UTC): never an empty window
    assert active_freeze([nightly], utc(2026, 3, 29, 0, 29)) is None
    hit = active_freeze([nightly], utc(2026, 3, 29, 1, 29))
    assert hit is not None
    assert (hit.since, hit.until) == (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30))
    assert active_freeze([nightly], utc(2026, 3, 29, 1, 30)) is None


def test_an_ambiguous_start_and_end_take_the_wider_reading() -> None:
    nightly = RecurringFreeze("30 2 * * *", timedelta(minutes=20), "Europe/Berlin")
    # 02:30-02:50 happens twice on 2026-10-25: the window covers both (00:30 to 01:50 UTC)
    hit = active_freeze([nightly], utc(2026, 10, 25, 1, 0))
    assert hit is not None
    assert (hit.since, hit.until) == (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 50))


def test_new_york_time_zone_is_respected() -> None:
    daily = RecurringFreeze("0 17 * * *", timedelta(hours=15), "America/New_York")
    # 2026-03-08: US clocks go forward at 02:00; 17:00 EST on the 7th → 08:00 EDT on the 8th
    hit = active_freeze([daily], datetime(2026, 3, 8, 7, 59, tzinfo=NEW_YORK))
    assert hit is not None
    assert hit.until == datetime(2026, 3, 8, 8, 0, tzinfo=NEW_YORK)
    assert active_freeze([daily], datetime(2026, 3, 8, 8, 0, tzinfo=NEW_YORK)) is None


def test_one_off_window_is_half_open() -> None:
    launch = OneOffFreeze(utc(2026, 12, 20), utc(2027, 1, 4), reason="holidays")
    assert active_freeze([launch], utc(2026, 12, 19, 23, 59)) is None
    hit = active_freeze([launch], utc(2026, 12, 20))
    assert hit is not None and hit.until == utc(2027, 1, 4)
    assert "holidays" in hit.describe() and "2027-01-04 00:00 UTC" in hit.describe()
    assert active_freeze([launch], utc(2027, 1, 4)) is None


def test_overlapping_windows_report_the_longest_and_chain_to_the_end() -> None:
    a = OneOffFreeze(utc(2026, 5, 1), utc(2026, 5, 3), name="a")
    b = OneOffFreeze(utc(2026, 5, 2), utc(2026, 5, 5), name="b")
    c = OneOffFreeze(utc(2026, 5, 5), utc(2026, 5, 6), name="c")  # touches b's end
    at = utc(2026, 5, 2, 12)
    assert [f.window.label for f in active_freezes([a, b, c], at)] == ["b", "a"]
    hit = active_freeze([a, b, c], at)
    assert hit is not None and hit.window is b
    assert next_unfrozen([a, b, c], at) == utc(2026, 5, 6)
    assert next_unfrozen([a, b, c], utc(2026, 4, 1)) == utc(2026, 4, 1)


def test_next_unfrozen_after_the_weekend_freeze() -> None:
    assert next_unfrozen([WEEKEND], berlin(2026, 3, 28, 12)) == utc(2026, 3, 30, 7)


def test_a_freeze_that_never_ends_has_no_next_unfrozen_moment() -> None:
    always = RecurringFreeze("0 0 * * *", timedelta(hours=25), "UTC")
    assert next_unfrozen([always], utc(2026, 1, 1, 12)) is None


def test_every_minute_window_is_evaluated_quickly() -> None:
    busy = RecurringFreeze("* 9-16 * * 1-5", timedelta(minutes=90), "UTC")
    assert active_freeze([busy], utc(2026, 1, 5, 18, 28)) is not None  # Monday, last start 16:59
    assert next_unfrozen([busy], utc(2026, 1, 5, 12)) == utc(2026, 1, 5, 18, 29)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "0 18 * *", "duration": timedelta(hours=1)}, "5-field cron"),
        ({"cron": "0 0 18 * * 5", "duration": timedelta(hours=1)}, "5-field cron"),
        ({"cron": "61 18 * * 5", "duration": timedelta(hours=1)}, "5-field cron"),
        ({"cron": "0 18 * * 5", "duration": timedelta(0)}, "must be positive"),
        (
            {"cron": "0 18 * * 5", "duration": timedelta(hours=1), "timezone": "Mars/Olympus"},
            "IANA",
        ),
    ],
)
def test_bad_recurring_windows_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidError, match=message):
        RecurringFreeze(**kwargs)  # type: ignore[arg-type]


def test_bad_one_off_windows_and_naive_times_are_refused() -> None:
    with pytest.raises(InvalidError, match="must be after its start"):
        OneOffFreeze(utc(2026, 1, 2), utc(2026, 1, 1))
    with pytest.raises(InvalidError, match="aware"):
        OneOffFreeze(datetime(2026, 1, 1), utc(2026, 1, 2))  # noqa: DTZ001
    with pytest.raises(InvalidError, match="aware"):
        active_freeze([WEEKEND], datetime(2026, 1, 1))  # noqa: DTZ001


def test_labels_name_the_window() -> None:
    assert WEEKEND.label == "0 18 * * 5 (Europe/Berlin) for 2d15h"
    assert RecurringFreeze("0 1 * * *", timedelta(minutes=30), name="backup").label == "backup"


@settings(max_examples=100, deadline=None)
@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    hours=st.integers(1, 80),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
    offset_minutes=st.integers(0, 60 * 24 * 400),
)
def test_frozen_exactly_inside_some_daily_occurrence(
    minute: int, hour: int, hours: int, zone: str, offset_minutes: int
) -> None:
    """Brute force: `now` is frozen iff some daily start (computed day by day in local wall time,
    localized) lies in (now - ~duration, now] with its wall-clock end after now."""
    window = RecurringFreeze(f"{minute} {hour} * * *", timedelta(hours=hours), zone)
    now = utc(2026, 1, 1) + timedelta(minutes=offset_minutes)
    tz = ZoneInfo(zone)
    local_day = now.astimezone(tz).date()
    expected = False
    for back in range(-1, hours // 24 + 3):
        day = local_day - timedelta(days=back)
        wall = datetime(day.year, day.month, day.day, hour, minute)  # noqa: DTZ001
        start = min(wall.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))
        ends = (wall + window.duration).replace(tzinfo=tz)
        end = max(ends.replace(fold=f).astimezone(UTC) for f in (0, 1))
        expected = expected or start <= now < end
    assert (active_freeze([window], now) is not None) is expected
    after = next_unfrozen([window], now)
    assert (after is None) is (hours >= 24 and expected)
    if after is not None:
        assert active_freeze([window], after) is None
        assert after >= now


one_offs = st.lists(
    st.tuples(st.integers(0, 60 * 24 * 14), st.integers(1, 60 * 24 * 3)).map(
        lambda p: OneOffFreeze(
            utc(2026, 3, 20) + timedelta(minutes=p[0]),
            utc(2026, 3, 20) + timedelta(minutes=p[0] + p[1]),
        )
    ),
    max_size=4,
)


@settings(max_examples=100, deadline=None)
@given(
    windows=one_offs,
    weekend=st.booleans(),
    offset=st.integers(0, 60 * 24 * 14),
    probes=st.lists(st.floats(0, 1), max_size=8),
)
def test_next_unfrozen_is_the_first_free_moment(
    windows: list[OneOffFreeze], weekend: bool, offset: int, probes: list[float]
) -> None:
    """Chained windows (the Berlin weekend across the spring change plus one-off ranges): the moment
    next_unfrozen returns is free, and every moment before it from `now` is frozen."""
    pool = [*windows, WEEKEND] if weekend else windows
    now = utc(2026, 3, 20) + timedelta(minutes=offset)
    free = next_unfrozen(pool, now)
    assert free is not None and free >= now
    assert active_freeze(pool, free) is None
    for p in probes:
        probe = now + (free - now) * p
        if probe < free:
            assert active_freeze(pool, probe) is not None
