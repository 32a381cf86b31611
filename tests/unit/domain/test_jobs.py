"""The retry policy of jobs: exponential backoff, capped, then dead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shipyard.domain.jobs import RetryPolicy, dead_message

T0 = datetime(2026, 12, 4, tzinfo=UTC)


def test_the_default_tries_five_times_backing_off_2_4_8_16_seconds() -> None:
    policy = RetryPolicy()
    waits = [policy.next_try(n, T0) for n in range(1, 6)]
    assert waits[:4] == [T0 + timedelta(seconds=s) for s in (2, 4, 8, 16)]
    assert waits[4] is None  # the fifth failure is the last: dead


def test_the_backoff_is_capped_and_never_overflows() -> None:
    policy = RetryPolicy(max_attempts=10_000, backoff_s=2, max_backoff_s=300)
    assert policy.delay_s(9_999) == 300
    assert policy.next_try(9_999, T0) == T0 + timedelta(seconds=300)


def test_a_policy_without_attempts_is_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_a_dead_job_says_how_often_it_was_tried_and_why() -> None:
    assert dead_message(1, "boom") == "gave up after 1 attempt: boom"
    assert dead_message(5, "OverflowError: x") == "gave up after 5 attempts: OverflowError: x"
