"""Sub-percent rollouts: exact Unleash buckets at whole percents, and cohorts that only grow."""

from __future__ import annotations

from typing import Any

import mmh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.domain.flags import PPM, compile_state, fine_position, rollout_ppm

USERS = [f"user-{i}" for i in range(20_000)]


def _state(params: dict[str, Any]) -> Any:
    strategy = {"name": "flexibleRollout", "parameters": {"groupId": "g", **params}}
    return compile_state({"features": [{"name": "f", "enabled": True, "strategies": [strategy]}]})


def _cohort(params: dict[str, Any]) -> set[str]:
    state = _state({"stickiness": "userId", **params})
    return {u for u in USERS if state.is_enabled("f", {"userId": u})}


def test_rollout_parameter_parses_to_parts_per_million() -> None:
    assert rollout_ppm("55") == 550_000
    assert rollout_ppm("0.1") == 1_000
    assert rollout_ppm("0.0001") == 1
    assert rollout_ppm("250") == PPM
    assert rollout_ppm("-3") == 0
    assert rollout_ppm("lots") == 0


@pytest.mark.parametrize("percent", [0, 1, 10, 33, 55, 99, 100])
def test_whole_percent_is_unleash_bucketing(percent: int) -> None:
    expected = {u for u in USERS if percent and mmh3.hash(f"g:{u}", 0, False) % 100 + 1 <= percent}
    assert _cohort({"rollout": str(percent)}) == expected
    assert _cohort({"rolloutPpm": str(percent * 10_000)}) == expected


def test_fine_position_refines_the_percent_bucket() -> None:
    for u in USERS[:2000]:
        h = mmh3.hash(f"g:{u}", 0, False)
        assert fine_position(h) // 10_000 == h % 100


def test_raising_the_rollout_only_adds_users() -> None:
    steps = ["0.01", "0.1", "0.5", "1", "2.5", "5", "25", "50", "99.9", "100"]
    previous: set[str] = set()
    for step in steps:
        cohort = _cohort({"rollout": step})
        assert previous <= cohort, step
        previous = cohort
    assert previous == set(USERS)


def test_sub_percent_share_is_close_to_the_target() -> None:
    users = [f"u{i}" for i in range(200_000)]
    state = _state({"stickiness": "userId", "rolloutPpm": "1000"})  # 0.1 %
    share = sum(state.is_enabled("f", {"userId": u}) for u in users) / len(users)
    assert 0.0007 < share < 0.0013


def test_rollout_ppm_wins_over_rollout_so_plain_unleash_clients_stay_conservative() -> None:
    assert _cohort({"rollout": "0", "rolloutPpm": "5000"}) == _cohort({"rollout": "0.5"})


def test_random_stickiness_uses_injected_rng() -> None:
    strategy = {"name": "flexibleRollout", "parameters": {"rollout": "0.1"}}
    raw = {"features": [{"name": "f", "enabled": True, "strategies": [strategy]}]}
    assert compile_state(raw, rng=lambda lo, hi: 999).is_enabled("f", {})
    assert not compile_state(raw, rng=lambda lo, hi: 1000).is_enabled("f", {})


@settings(max_examples=300, deadline=None)
@given(
    user=st.text(min_size=1, max_size=40),
    group=st.text(min_size=1, max_size=20),
    stickiness=st.sampled_from(["default", "userId", "sessionId", "tenant"]),
    low=st.integers(0, PPM),
    high=st.integers(0, PPM),
)
def test_property_raising_the_rollout_never_removes_a_user(
    user: str, group: str, stickiness: str, low: int, high: int
) -> None:
    """Same stickiness and groupId: a user in at ``low`` ppm is in at any ``high >= low``.

    Each side is written the way ``flag rollout`` writes it (floor in ``rollout``, exact value
    in ``rolloutPpm`` when it is not a whole percent), so standard and extension paths mix.
    """
    low, high = min(low, high), max(low, high)
    ctx = {"userId": user, "sessionId": user, "properties": {"tenant": user}}

    def enabled(ppm: int) -> bool:
        params = {"groupId": group, "stickiness": stickiness, "rollout": str(ppm // 10_000)}
        if ppm % 10_000:
            params["rolloutPpm"] = str(ppm)
        return bool(_state(params).is_enabled("f", ctx))

    assert not enabled(low) or enabled(high)
