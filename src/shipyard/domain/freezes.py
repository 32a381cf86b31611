"""Freeze windows: when deployments to an environment are refused.

Two kinds, both pure values:

- ``RecurringFreeze``: a 5-field cron expression read as wall-clock time in an IANA time zone, plus a
  duration. "0 18 * * 5" in Europe/Berlin for 63h freezes Friday 18:00 to Monday 09:00 local time, every
  week, also on the weekends the clocks change.
- ``OneOffFreeze``: an explicit [start, end) range with a reason (a launch, a holiday).

Duration is wall-clock arithmetic in the window's zone (as a person reading a calendar expects; like
GitLab's freeze_start/freeze_end crons): on the weekend clocks go forward the 63h window above lasts 62
real hours and still ends Monday 09:00. Where a wall-clock time is ambiguous (clocks go back) or does
not exist (the gap when they go forward), a start takes the earliest instant it may mean and an end the
latest: a freeze errs on the side of holding, and is never shortened to nothing by a gap.

Time is always passed in: ``now`` must be an aware datetime; results are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from shipyard.errors import InvalidError

__all__ = [
    "ActiveFreeze",
    "FreezeWindow",
    "OneOffFreeze",
    "RecurringFreeze",
    "active_freeze",
    "active_freezes",
    "next_unfrozen",
    "require_aware",
]

# Largest gap between two UTC offsets of one zone across a change (double summer time was 2h); the
# wall-clock scan below looks this far beyond `now` on both sides so folds and gaps are covered.
_DST_MARGIN = timedelta(hours=3)
# next_unfrozen gives up after chaining this many windows (a freeze that never ends).
_MAX_CHAIN = 200


def require_aware(at: datetime, what: str = "now") -> datetime:
    """Return ``at`` in UTC; a naive datetime is a programming error, refused loudly."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidError(f"{what} must be a time zone aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RecurringFreeze:
    cron: str
    duration: timedelta
    timezone: str = "UTC"
    reason: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        fields = self.cron.split()
        if len(fields) != 5 or not croniter.is_valid(self.cron):
            raise InvalidError(
                f"freeze cron {self.cron!r} is not a 5-field cron expression (minute hour day month weekday)",
                details={"cron": self.cron},
            )
        if self.duration <= timedelta(0):
            raise InvalidError(
                f"freeze duration must be positive, got {self.duration}",
                details={"duration_seconds": self.duration.total_seconds()},
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidError(
                f"unknown time zone {self.timezone!r}; use an IANA name like Europe/Berlin",
                details={"timezone": self.timezone},
            ) from None

    @property
    def label(self) -> str:
        return self.name or f"{self.cron} ({self.timezone}) for {_human(self.duration)}"

    def occurrences_around(self, now: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The (start, end) UTC ranges of this window that may contain ``now``, newest first: every
        start in wall-clock [now - duration - margin, now + margin], computed in local wall time."""
        zone = ZoneInfo(self.timezone)
        now_utc = require_aware(now)
        wall_now = now_utc.astimezone(zone).replace(tzinfo=None)
        earliest = wall_now - self.duration - _DST_MARGIN
        it = croniter(self.cron, wall_now + _DST_MARGIN)
        while True:
            wall_start: datetime = it.get_prev(datetime)
            if wall_start < earliest:
                return
            yield _earliest(wall_start, zone), _latest(wall_start + self.duration, zone)

    def latest_start_at_or_before(self, now: datetime) -> tuple[datetime, datetime] | None:
        """The active occurrence with the latest end, if any contains ``now``."""
        now_utc = require_aware(now)
        best: tuple[datetime, datetime] | None = None
        # Scanning every start over the whole duration is exact but slow for "* * * * *" with long
        # durations; later wall-clock starts end later, so once one contains `now` only starts within
        # the DST margin before it can end later still.
        stop_before: datetime | None = None
        for start, end in self.occurrences_around(now_utc):
            if stop_before is not None and start < stop_before:
                break
            if start <= now_utc < end:
                if best is None or end > best[1]:
                    best = (start, end)
                if stop_before is None:
                    stop_before = start - 2 * _DST_MARGIN
        return best


@dataclass(frozen=True, slots=True)
class OneOffFreeze:
    start: datetime
    end: datetime
    reason: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        start = require_aware(self.start, "freeze start")
        end = require_aware(self.end, "freeze end")
        if end <= start:
            raise InvalidError(
                f"freeze end {end.isoformat()} must be after its start {start.isoformat()}",
                details={"start": start.isoformat(), "end": end.isoformat()},
            )

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.start.astimezone(UTC):%Y-%m-%d %H:%M} to {self.end.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


FreezeWindow = RecurringFreeze | OneOffFreeze


@dataclass(frozen=True, slots=True)
class ActiveFreeze:
    """A window that holds at a moment: which one, since and until when (UTC)."""

    window: FreezeWindow
    since: datetime
    until: datetime

    @property
    def reason(self) -> str:
        return self.window.reason

    def describe(self) -> str:
        why = f" ({self.window.reason})" if self.window.reason else ""
        return f"frozen by {self.window.label}{why} until {self.until:%Y-%m-%d %H:%M} UTC"


def active_freezes(windows: Iterable[FreezeWindow], now: datetime) -> list[ActiveFreeze]:
    """Every window holding at ``now`` (start <= now < end), longest-lasting first."""
    now_utc = require_aware(now)
    found: list[ActiveFreeze] = []
    for window in windows:
        if isinstance(window, OneOffFreeze):
            start, end = require_aware(window.start), require_aware(window.end)
            if start <= now_utc < end:
                found.append(ActiveFreeze(window, start, end))
        else:
            hit = window.latest_start_at_or_before(now_utc)
            if hit is not None:
                found.append(ActiveFreeze(window, hit[0], hit[1]))
    found.sort(key=lambda f: f.until, reverse=True)
    return found


def active_freeze(windows: Iterable[FreezeWindow], now: datetime) -> ActiveFreeze | None:
    """The window holding at ``now`` that lasts longest, or None when not frozen."""
    found = active_freezes(windows, now)
    return found[0] if found else None


def next_unfrozen(windows: Iterable[FreezeWindow], now: datetime) -> datetime | None:
    """The first moment at or after ``now`` when no window holds (``now`` itself when not frozen),
    following windows that overlap or touch. None when the freeze never ends (e.g. a daily window
    longer than a day)."""
    pool = tuple(windows)
    at = require_aware(now)
    for _ in range(_MAX_CHAIN):
        hit = active_freeze(pool, at)
        if hit is None:
            return at
        at = hit.until
    return None


def _earliest(wall: datetime, zone: ZoneInfo) -> datetime:
    """Wall-clock time in ``zone`` → the earliest UTC instant it may mean (for starts)."""
    return min(wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))


def _latest(wall: datetime, zone: ZoneInfo) -> datetime:
    """Wall-clock time in ``zone`` → the latest UTC instant it may mean (for ends)."""
    return max(wall.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1))


def _human(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return "".join(parts) or f"{seconds}s"
