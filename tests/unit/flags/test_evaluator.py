"""Evaluator behaviour beyond the client spec: reasons, clock injection, operators, deltas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.domain.flags import Reason, apply_events, compile_state
from shipyard.errors import InvalidError


def _flag(name: str = "f", **fields: Any) -> dict[str, Any]:
    return {"name": name, "enabled": True, **fields}


def _constraint(op: str, *values: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "default",
        "constraints": [{"contextName": "x", "operator": op, "values": list(values), **extra}],
    }


def test_reasons() -> None:
    state = compile_state(
        {
            "features": [
                _flag("off", enabled=False),
                _flag("static"),
                _flag("targeted", strategies=[_constraint("IN", "a")]),
                _flag(
                    "split",
                    strategies=[
                        {
                            "name": "flexibleRollout",
                            "parameters": {"rollout": "50", "stickiness": "userId"},
                        }
                    ],
                ),
                _flag(
                    "variants",
                    variants=[
                        {"name": "a", "weight": 1},
                        {
                            "name": "b",
                            "weight": 1,
                            "overrides": [{"contextName": "userId", "values": ["vip"]}],
                        },
                    ],
                ),
                _flag("child", dependencies=[{"feature": "off"}]),
            ]
        }
    )
    ctx = {"userId": "u1", "properties": {"x": "b"}}
    assert state.evaluate("missing", ctx) is None
    assert state.evaluate("off", ctx).reason is Reason.DISABLED  # type: ignore[union-attr]
    assert state.evaluate("static", ctx).reason is Reason.STATIC  # type: ignore[union-attr]
    miss = state.evaluate("targeted", ctx)
    assert miss is not None and miss.reason is Reason.DEFAULT and not miss.enabled
    hit = state.evaluate("targeted", {"properties": {"x": "a"}})
    assert hit is not None and hit.reason is Reason.TARGETING_MATCH and hit.enabled
    assert state.evaluate("split", ctx).reason in (Reason.SPLIT, Reason.DEFAULT)  # type: ignore[union-attr]
    assert state.evaluate("variants", ctx).reason is Reason.SPLIT  # type: ignore[union-attr]
    vip = state.evaluate("variants", {"userId": "vip"})
    assert vip is not None and vip.reason is Reason.TARGETING_MATCH and vip.variant.name == "b"
    child = state.evaluate("child", ctx)
    assert child is not None and child.reason is Reason.PREREQUISITE_FAILED


def test_date_constraints_use_the_injected_clock_not_the_system_clock() -> None:
    strategy = {
        "name": "default",
        "constraints": [
            {
                "contextName": "currentTime",
                "operator": "DATE_AFTER",
                "value": "2030-01-01T00:00:00Z",
            }
        ],
    }
    raw = {"features": [_flag(strategies=[strategy])]}
    assert not compile_state(raw).is_enabled("f", {})
    later = compile_state(raw, clock=lambda: datetime(2031, 1, 1, tzinfo=UTC))
    assert later.is_enabled("f", {})
    assert not later.is_enabled("f", {"currentTime": datetime(2029, 1, 1, tzinfo=UTC)})


@pytest.mark.parametrize(
    ("strategy", "value", "expected"),
    [
        (_constraint("REGEX", "^ab+c$", caseInsensitive=True), "ABBC", True),
        (_constraint("REGEX", "(?<=a)b"), "ab", False),  # lookbehind: RE2 rejects, so false
        (_constraint("SEMVER_GTE", "1.10.0"), "1.9.9", False),
        (_constraint("SEMVER_LT", "1.0.0"), "1.0.0-rc.1", True),
        (_constraint("IN_CIDR", "10.0.0.0/8"), "10.2.3.4", True),
        (_constraint("NUM_GT", "1.5"), "abc", False),
        (_constraint("NOT_IN", "a", inverted=True), "a", True),
        (_constraint("STR_CONTAINS", "x", inverted=True), None, True),
        (_constraint("BOGUS", "x", inverted=True), "x", False),
    ],
)
def test_operators(strategy: dict[str, Any], value: str | None, expected: bool) -> None:
    state = compile_state({"features": [_flag(strategies=[strategy])]})
    assert state.is_enabled("f", {"properties": {"x": value}}) is expected


def test_non_string_context_values_compare_as_unleash_strings() -> None:
    state = compile_state({"features": [_flag(strategies=[_constraint("IN", "42", "true")])]})
    assert state.is_enabled("f", {"properties": {"x": 42}})
    assert state.is_enabled("f", {"properties": {"x": True}})


def test_delta_events_fold_into_a_full_state() -> None:
    base = {"features": [_flag("a"), _flag("b")], "segments": []}
    state = apply_events(
        base,
        [
            {"type": "feature-removed", "featureName": "a"},
            {"type": "feature-updated", "feature": _flag("c")},
            {"type": "segment-updated", "segment": {"id": 1, "constraints": []}},
        ],
    )
    assert [f["name"] for f in state["features"]] == ["b", "c"]
    assert [s["id"] for s in state["segments"]] == [1]
    with pytest.raises(InvalidError):
        apply_events(base, [{"type": "nope"}])


def test_broken_documents_raise_invalid_error() -> None:
    with pytest.raises(InvalidError):
        compile_state({"features": [{"enabled": True}]})
    with pytest.raises(InvalidError):
        compile_state({"features": "nope"})
