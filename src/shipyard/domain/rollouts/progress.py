"""Moving between steps, and the start of the promotion once they are done."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shipyard.domain.rollouts.kinds import PauseReason, Phase, RecordKind
from shipyard.domain.rollouts.model import Decision, Record, Rollout


def advance(r: Rollout, now: datetime) -> Rollout:
    """The next step; a measured analysis goes to ``earlier_analyses`` for views of the rollout."""
    earlier = r.earlier_analyses
    if r.analysis is not None and r.analysis.last_at is not None:
        earlier = (*earlier, (r.step, r.analysis))
    return replace(
        r,
        step=r.step + 1,
        step_started_at=now,
        analysis=None,
        earlier_analyses=earlier,
        approvals=(),
        pause_reason="",
        paused_for=PauseReason.NONE,
    )


def finish_steps(r: Rollout, now: datetime, actor: str, why: str) -> Decision:
    nxt = replace(
        r,
        phase=Phase.PROMOTING,
        weight=100.0,
        due_at=now,
        pause_reason="",
        paused_for=PauseReason.NONE,
        reason=why,
    )
    return Decision(nxt, (Record(RecordKind.PROMOTING, r.step, actor, why),))
