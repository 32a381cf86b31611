"""Shared flag documents for SDK tests."""

from __future__ import annotations

from typing import Any

import pytest


def flag_state(*, kill: bool = False, title: str = "Hello") -> dict[str, Any]:
    """A small client-features document exercising every OpenFeature value type."""
    rollout = {"name": "flexibleRollout", "parameters": {"rollout": "100", "stickiness": "userId"}}
    return {
        "version": 2,
        "features": [
            {"name": "checkout", "enabled": not kill, "strategies": [{"name": "default"}]},
            {
                "name": "beta",
                "enabled": True,
                "strategies": [
                    {
                        "name": "default",
                        "constraints": [
                            {"contextName": "plan", "operator": "IN", "values": ["pro"]}
                        ],
                    }
                ],
            },
            {
                "name": "title",
                "enabled": True,
                "strategies": [],
                "variants": [
                    {"name": "v1", "weight": 1, "payload": {"type": "string", "value": title}}
                ],
            },
            {
                "name": "limits",
                "enabled": True,
                "strategies": [rollout],
                "variants": [
                    {"name": "a", "weight": 1, "payload": {"type": "json", "value": '{"max": 3}'}},
                    {"name": "b", "weight": 1, "payload": {"type": "json", "value": '{"max": 5}'}},
                ],
            },
            {
                "name": "ratio",
                "enabled": True,
                "strategies": [],
                "variants": [
                    {"name": "x", "weight": 1, "payload": {"type": "number", "value": "2"}}
                ],
            },
            {
                "name": "broken",
                "enabled": True,
                "strategies": [],
                "variants": [{"name": "x", "weight": 1, "payload": {"type": "json", "value": "{"}}],
            },
            {
                "name": "plain",
                "enabled": True,
                "strategies": [],
                "variants": [{"name": "only", "weight": 1}],
            },
        ],
        "segments": [],
    }


@pytest.fixture
def state() -> dict[str, Any]:
    return flag_state()
