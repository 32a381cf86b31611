"""What every clock promises (ports.clock.Clock): the wall clock and the tests' fixed one.

The contract: ``now`` is an aware UTC datetime that never goes back; ``sleep(s)`` moves ``now``
on by at least ``s`` (the fixed clock by exactly ``s``, without waiting); a negative sleep is
no sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from shipyard.adapters.clock import FixedClock, SystemClock
from shipyard.ports.clock import Clock

MAKERS: dict[str, Callable[[], Clock]] = {
    "system": SystemClock,
    "fixed": lambda: FixedClock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC)),
}


@pytest.fixture(params=list(MAKERS))
def clock(request: pytest.FixtureRequest) -> Clock:
    return MAKERS[request.param]()


def test_now_is_an_aware_utc_datetime(clock: Clock) -> None:
    now = clock.now()

    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_now_never_goes_back(clock: Clock) -> None:
    readings = [clock.now() for _ in range(50)]

    assert readings == sorted(readings)


def test_sleep_moves_now_on_by_at_least_the_time_asked(clock: Clock) -> None:
    before = clock.now()
    started = time.monotonic()

    clock.sleep(0.05)

    assert clock.now() - before >= timedelta(seconds=0.05)
    assert time.monotonic() - started < 1  # and not much longer, for the wall clock


def test_a_negative_sleep_is_no_sleep(clock: Clock) -> None:
    before = clock.now()
    started = time.monotonic()

    clock.sleep(-5)

    assert before <= clock.now() < before + timedelta(seconds=1)
    assert time.monotonic() - started < 0.5
