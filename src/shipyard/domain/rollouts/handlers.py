"""One small handler per step type, in a table from step type to handler.

Each handler is pure: ``(rollout, step, observation, now) -> Decision`` (the next state, its
records as evidence; effects are derived once by ``lifecycle.decide``). A handler that is done
with its step returns the rollout advanced to the next one; ``run_steps`` goes on from there
until a step has to wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shipyard.domain.rollouts.analysis import decide_analysis
from shipyard.domain.rollouts.kinds import PauseReason, Phase, RecordKind
from shipyard.domain.rollouts.model import ENGINE, Decision, Observation, Record, Rollout
from shipyard.domain.rollouts.progress import advance, finish_steps
from shipyard.domain.rollouts.steps import (
    Analysis,
    Approval,
    Mirror,
    Pause,
    Segment,
    SetWeight,
    Step,
)

Handler = Callable[[Rollout, Any, Observation | None, datetime], Decision]


def decide_set_weight(
    r: Rollout, step: SetWeight, obs: Observation | None, now: datetime
) -> Decision:
    rec = Record(
        RecordKind.WEIGHT,
        r.step,
        ENGINE,
        f"weight set to {step.weight:g}%",
        {"weight": step.weight, "from": r.weight},
    )
    return Decision(advance(replace(r, weight=step.weight), now), (rec,))


def decide_segment(r: Rollout, step: Segment, obs: Observation | None, now: datetime) -> Decision:
    rec = Record(
        RecordKind.SEGMENT, r.step, ENGINE, step.describe(), {"segment": step.segment.describe()}
    )
    return Decision(advance(replace(r, segment=step.segment), now), (rec,))


def decide_mirror(r: Rollout, step: Mirror, obs: Observation | None, now: datetime) -> Decision:
    rec = Record(
        RecordKind.MIRROR,
        r.step,
        ENGINE,
        f"mirroring {step.mirror:g}% of requests",
        {"mirror": step.mirror},
    )
    return Decision(advance(replace(r, mirror=step.mirror), now), (rec,))


def decide_pause(r: Rollout, step: Pause, obs: Observation | None, now: datetime) -> Decision:
    if step.duration_s is None:
        why = step.label or "paused until promoted"
        nxt = replace(
            r, phase=Phase.PAUSED, pause_reason=why, paused_for=PauseReason.PAUSE_STEP, due_at=None
        )
        return Decision(nxt, (Record(RecordKind.PAUSED, r.step, ENGINE, why),))
    until = (r.step_started_at or now) + timedelta(seconds=step.duration_s)
    if now < until:
        return Decision(replace(r, due_at=until))
    return Decision(advance(r, now))


def decide_approval(r: Rollout, step: Approval, obs: Observation | None, now: datetime) -> Decision:
    if len(r.approvals) >= step.required:
        return Decision(advance(r, now))
    why = f"waiting for {step.required - len(r.approvals)} approval(s)"
    rec = Record(
        RecordKind.WAITING,
        r.step,
        ENGINE,
        why,
        {"approvers": list(step.approvers), "required": step.required},
    )
    nxt = replace(
        r, phase=Phase.PAUSED, pause_reason=why, paused_for=PauseReason.APPROVAL, due_at=None
    )
    return Decision(nxt, (rec,))


HANDLERS: dict[type[Step], Handler] = {
    SetWeight: decide_set_weight,
    Segment: decide_segment,
    Mirror: decide_mirror,
    Pause: decide_pause,
    Approval: decide_approval,
    Analysis: decide_analysis,
}


def run_steps(
    r: Rollout, now: datetime, obs: Observation | None, records: tuple[Record, ...] = ()
) -> Decision:
    """Run steps from ``r.step`` until one has to wait; one observation is one measurement."""
    out = list(records)
    while r.phase is Phase.PROGRESSING:
        step = r.current_step
        if step is None:
            done = finish_steps(r, now, ENGINE, "all steps passed")
            return Decision(done.rollout, (*out, *done.records))
        d = HANDLERS[type(step)](r, step, obs, now)
        if isinstance(step, Analysis):
            obs = None
        out.extend(d.records)
        if d.rollout.step == r.step:
            return Decision(d.rollout, tuple(out))
        r = d.rollout
    return Decision(r, tuple(out))
