"""How the engine's work went, as decisions: endings done, endings that failed, failed ticks.

Whatever fails, the result has a next action: a due time (a bounded backoff), a terminal phase
that says what could not be done, or a pause naming the human action awaited. Nothing is retried
forever: ``consecutive_error_limit`` attempts, then the rollout moves on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shipyard.domain.rollouts.faults import (
    backoff,
    can_abort,
    error_record,
    give_up,
    streak,
    streak_records,
)
from shipyard.domain.rollouts.kinds import FaultKind, PauseReason, Phase, RecordKind
from shipyard.domain.rollouts.model import (
    ENGINE,
    ApplyRoute,
    Decision,
    EffectFailure,
    Record,
    Rollout,
)


def _rolled_back(
    r: Rollout,
    now: datetime,
    not_done: tuple[str, ...],
    evidence: Mapping[str, Any] | None = None,
) -> Decision:
    nxt = replace(
        r,
        phase=Phase.ROLLED_BACK,
        weight=0.0,
        due_at=None,
        finished_at=now,
        old_retired=True,
        not_done=not_done,
        errors=None if not not_done else r.errors,
    )
    if r.policy.flag_routed:  # the new code stays deployed; only its feature goes dark
        message = f"flag {r.policy.flag} off for everyone; {r.canary} keeps running dark"
    else:
        message = f"{r.stable} serves 100% of traffic again; {r.canary} stopped"
    if not_done:
        message = f"rolled back incompletely: {'; '.join(not_done)}"
    ev: dict[str, Any] = {"reason": r.reason}
    if not_done:
        ev.update(not_done=list(not_done), errors=dict(evidence or {}))
    return Decision(nxt, (Record(RecordKind.ROLLED_BACK, r.step, ENGINE, message, ev),))


def _promoted(
    r: Rollout,
    now: datetime,
    not_done: tuple[str, ...],
    evidence: Mapping[str, Any] | None = None,
) -> Decision:
    old = r.stable if r.stable != r.canary else None  # a redeploy has no old colour
    keep = r.policy.keep_old_for_s if old else 0.0
    retire_at = now + timedelta(seconds=keep) if keep > 0 and not not_done else None
    nxt = replace(
        r,
        phase=Phase.PROMOTED,
        weight=100.0,
        due_at=retire_at,
        retire_at=retire_at,
        old_retired=retire_at is None,
        finished_at=now,
        not_done=not_done,
        errors=None if not not_done else r.errors,
    )
    message = f"{r.canary} serves 100% of traffic"
    if r.policy.flag_routed:
        message = f"flag {r.policy.flag} on for 100% of users of {r.canary}"
    if retire_at is not None:
        message += f"; {r.stable} stays ready until {retire_at.isoformat(timespec='seconds')}"
    ev: dict[str, Any] = {"reason": r.reason}
    if not_done:
        message += f"; not done: {'; '.join(not_done)}"
        ev.update(not_done=list(not_done), errors=dict(evidence or {}))
    return Decision(nxt, (Record(RecordKind.PROMOTED, r.step, ENGINE, message, ev),))


def conclude(
    r: Rollout,
    now: datetime,
    not_done: tuple[str, ...],
    *,
    route_failed: bool,
    evidence: Mapping[str, Any] | None = None,
) -> Decision:
    """The ending of ``r`` failed ``consecutive_error_limit`` times: end it anyway, saying what
    could not be done (an abort always ends: in ``rolled_back``)."""
    if r.phase is Phase.ABORTING:
        if route_failed and not r.policy.flag_routed:
            not_done = (
                *not_done,
                f"{r.canary} was not stopped: traffic could not be moved off it",
            )
        return _rolled_back(r, now, not_done, evidence)
    if r.phase is Phase.PROMOTING:
        if not route_failed:
            return _promoted(r, now, not_done, evidence)
        why = f"could not finish the promotion: {'; '.join(not_done)}"
        ev = {"errors": dict(evidence or {})}
        if can_abort(r):
            nxt = replace(r, phase=Phase.ABORTING, due_at=now, reason=why, errors=None)
            return Decision(nxt, (Record(RecordKind.ABORTING, r.step, ENGINE, why, ev),))
        return give_up(r, now, why, ev)  # a first version: a human fixes it
    if r.phase is Phase.PROMOTED:
        nxt = replace(r, old_retired=True, due_at=None, not_done=(*r.not_done, *not_done))
        msg = f"could not stop {r.stable}: {'; '.join(not_done)}"
        gone = {"not_done": list(not_done), "errors": dict(evidence or {})}
        return Decision(nxt, (Record(RecordKind.RETIRED, r.step, ENGINE, msg, gone),))
    return Decision(r)


def finish(r: Rollout, now: datetime, failures: Sequence[EffectFailure] = ()) -> Decision:
    """The ending effects were carried out (``failures``: the first that failed, if any)."""
    if failures:
        f = failures[0]
        s = streak(r, f.fault, f"could not {f.effect.describe()}: {f.error}", now)
        recs = streak_records(r, s)
        nxt = replace(r, errors=s, last_error=s.message, due_at=now + backoff(s.count))
        if s.count < r.policy.consecutive_error_limit:
            return Decision(nxt, recs)
        d = conclude(
            nxt,
            now,
            (f"{s.message} ({s.count} attempts)",),
            route_failed=_is_route(f),
            evidence=error_record(r, s).evidence,
        )
        return Decision(d.rollout, (*recs, *d.records))
    if r.phase is Phase.PROMOTING:
        return _promoted(replace(r, errors=None, last_error=""), now, ())
    if r.phase is Phase.ABORTING:
        return _rolled_back(replace(r, errors=None, last_error=""), now, ())
    if r.phase is Phase.PROMOTED and not r.old_retired:
        nxt = replace(r, old_retired=True, due_at=None, errors=None)
        return Decision(nxt, (Record(RecordKind.RETIRED, r.step, ENGINE, f"{r.stable} stopped"),))
    return Decision(r)


def _is_route(f: EffectFailure) -> bool:
    return isinstance(f.effect, ApplyRoute)


def fault(r: Rollout, kind: FaultKind, message: str, now: datetime) -> Decision:
    """The tick of ``r`` failed with ``message`` before it could decide (the environment's
    config unreadable, the router of a progressing rollout broken, no instance to route to)."""
    s = streak(r, kind, message, now)
    recs = streak_records(r, s)
    evidence = error_record(r, s).evidence
    nxt = replace(r, errors=s, last_error=message, due_at=now + backoff(s.count))
    if s.count < r.policy.consecutive_error_limit:
        return Decision(nxt, recs)
    if r.phase is Phase.PROGRESSING:
        d = give_up(nxt, now, f"{s.count} errors in a row: {message}", evidence)
        return Decision(d.rollout, (*recs, *d.records))
    if r.phase is Phase.PAUSED:  # it waits on its human already; the resync keeps trying
        if r.paused_for is PauseReason.NONE:
            nxt = replace(nxt, paused_for=PauseReason.ERRORS, pause_reason=message)
        return Decision(replace(nxt, due_at=None), recs)
    if r.phase in (Phase.PROMOTING, Phase.ABORTING, Phase.PROMOTED):
        d = conclude(
            nxt, now, (f"{message} ({s.count} attempts)",), route_failed=True, evidence=evidence
        )
        return Decision(d.rollout, (*recs, *d.records))
    return Decision(replace(nxt, due_at=None), recs)
