"""Rollout rows saved before the typed core (migration head 0006) still load and run on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shipyard.domain import rollouts as ro
from shipyard.domain.rollouts import (
    Analysis,
    Approval,
    Mirror,
    Pause,
    PauseReason,
    Phase,
    Segment,
    SegmentRule,
    SetWeight,
)
from shipyard.store.rollouts import decode_rollout_state, encode_rollout_state
from shipyard.store.tables import RolloutRow

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
OLD = Path(__file__).parent / "data" / "rollout_state_0006.json"


def row(state: dict[str, Any], phase: str = "paused") -> RolloutRow:
    return RolloutRow(
        id=1,
        deployment_id=2,
        project_id=1,
        environment="production",
        canary="1.0.0-rc.2",
        stable="1.0.0-rc.1",
        phase=phase,
        active=True,
        due_at=None,
        revision=3,
        last_error="",
        state=state,
        created_at=T0,
        updated_at=T0,
    )


def old_state() -> dict[str, Any]:
    return json.loads(OLD.read_text())  # type: ignore[no-any-return]


def test_an_old_row_loads_with_typed_steps_and_pause_reason() -> None:
    r = decode_rollout_state(row(old_state()), "shop")
    assert [type(s) for s in r.policy.steps] == [
        SetWeight,
        Analysis,
        Approval,
        Segment,
        Mirror,
        Pause,
    ]
    weight, analysis, approval, segment, mirror, pause = r.policy.steps
    assert weight == SetWeight(10.0)
    assert isinstance(analysis, Analysis) and analysis.checks[0].consecutive_error_limit is None
    assert approval == Approval(1, ("role:approver",))
    assert segment == Segment(SegmentRule("header", "x-beta", "1"))
    assert (mirror, pause) == (Mirror(5.0), Pause())
    assert (r.phase, r.paused_for, r.pause_reason) == (
        Phase.PAUSED,
        PauseReason.APPROVAL,
        "waiting for 1 approval(s)",
    )
    assert r.policy.consecutive_error_limit == ro.DEFAULT_ERROR_LIMIT
    assert r.errors is None and r.not_done == ()
    assert r.earlier_analyses[0][1].queries["checkout"][0].canary == 0.5


def test_an_old_row_goes_on_where_it_stood() -> None:
    r = decode_rollout_state(row(old_state()), "shop")
    d = ro.promote(r, user="bob", roles=["approver"], now=T0)  # the approval it waited for
    assert d.rollout.step == 5 and d.rollout.paused_for is PauseReason.PAUSE_STEP


def test_rows_older_still_load_without_flag_routing_or_earlier_analyses() -> None:
    state = old_state()
    del state["policy"]["router"], state["policy"]["flag"], state["earlier_analyses"]
    r = decode_rollout_state(row(state), "shop")
    assert (r.policy.router, r.policy.flag, r.earlier_analyses) == ("haproxy", None, ())


@pytest.mark.parametrize(
    ("words", "reason"),
    [
        ("paused by ada", PauseReason.HUMAN),
        ("analysis inconclusive: checkout: no data", PauseReason.INCONCLUSIVE),
    ],
)
def test_old_pause_words_read_as_their_reason(words: str, reason: PauseReason) -> None:
    state = old_state()
    state["pause_reason"] = words
    assert decode_rollout_state(row(state), "shop").paused_for is reason


def test_what_is_saved_now_loads_back_the_same() -> None:
    r = decode_rollout_state(row(old_state()), "shop")
    r = ro.fault(r, ro.FaultKind.ROUTER, "router down", T0).rollout
    again = decode_rollout_state(row(encode_rollout_state(r)), "shop")
    assert again.errors == r.errors and again.policy == r.policy
    assert again.paused_for is r.paused_for
