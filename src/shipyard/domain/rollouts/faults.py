"""Errors as decisions: the pieces ``outcomes`` and the analysis handler share.

A streak of errors is retried with a bounded backoff, and after ``consecutive_error_limit`` in a
row the policy's ``on_error`` acts (``give_up``): abort to stable, or pause for a human.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shipyard.domain.rollouts.kinds import FaultKind, OnError, PauseReason, Phase, RecordKind
from shipyard.domain.rollouts.model import ENGINE, Decision, ErrorStreak, Record, Rollout

BACKOFF_FIRST_S = 2.0
BACKOFF_MAX_S = 60.0
TICK = "tick"


def backoff(count: int) -> timedelta:
    """2 s, 4 s, 8 s ... at most a minute: a broken router is not hammered."""
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, count - 1)))


def can_abort(r: Rollout) -> bool:
    return r.stable is not None or r.policy.flag_routed


def give_up(
    r: Rollout, now: datetime, why: str, evidence: Mapping[str, Any] | None = None
) -> Decision:
    """Errors reached their limit: abort to stable, or pause for a human (``on_error: pause``,
    or nothing to go back to)."""
    ev = dict(evidence or {})
    if r.policy.on_error is OnError.PAUSE or not can_abort(r):
        why = f"paused after errors: {why}"
        nxt = replace(
            r, phase=Phase.PAUSED, due_at=None, pause_reason=why, paused_for=PauseReason.ERRORS
        )
        return Decision(nxt, (Record(RecordKind.PAUSED, r.step, ENGINE, why, ev),))
    why = f"aborted after errors: {why}"
    nxt = replace(
        r,
        phase=Phase.ABORTING,
        due_at=now,
        reason=why,
        pause_reason="",
        paused_for=PauseReason.NONE,
        errors=None,  # the abort gets its own attempts
    )
    return Decision(nxt, (Record(RecordKind.ABORTING, r.step, ENGINE, why, ev),))


def streak(r: Rollout, fault: FaultKind, message: str, now: datetime) -> ErrorStreak:
    old = r.errors
    return old.then(fault, message, now) if old else ErrorStreak.first(TICK, fault, message, now)


def error_record(r: Rollout, s: ErrorStreak) -> Record:
    limit = r.policy.consecutive_error_limit
    return Record(
        RecordKind.ERROR,
        r.step,
        ENGINE,
        f"{s.message} ({s.count} in a row, limit {limit})",
        s.evidence(limit),
    )


def streak_records(r: Rollout, s: ErrorStreak) -> tuple[Record, ...]:
    """The record of an error, when it begins a distinct streak. Records are append-only, so
    the streak's count and last time live in the rollout's state (status shows them) and go
    into the record of what ends it (recovered, aborting, paused, rolled back)."""
    return (error_record(r, s),) if s.same == 1 else ()
