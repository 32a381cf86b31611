"""Differential test: same state, same random contexts, same answers as Unleash's own engine.

Runs only where ``yggdrasil-engine`` is installed (``pip install -e .[bench]``). Contexts always
carry a userId or sessionId so no answer depends on random stickiness.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from shipyard.domain.flags import compile_state

engine_mod = pytest.importorskip("yggdrasil_engine.engine")


def _weights(*pairs: tuple[str, int], **extra: Any) -> list[dict[str, Any]]:
    return [{"name": n, "weight": w, **extra} for n, w in pairs]


STATE: dict[str, Any] = {
    "version": 2,
    "features": [
        {
            "name": "fv",
            "enabled": True,
            "strategies": [],
            "variants": _weights(("a", 30), ("b", 50), ("c", 20)),
        },
        {
            "name": "fr",
            "enabled": True,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "37", "stickiness": "default", "groupId": "gg"},
                }
            ],
        },
        {
            "name": "sv",
            "enabled": True,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "100", "stickiness": "default", "groupId": "gx"},
                    "variants": _weights(("p", 1), ("q", 2), ("r", 3)),
                }
            ],
        },
        {
            "name": "cs",
            "enabled": True,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "63", "stickiness": "tenant", "groupId": "t"},
                    "variants": _weights(("p", 5), ("q", 7), stickiness="tenant"),
                }
            ],
        },
        {
            "name": "ops",
            "enabled": True,
            "strategies": [
                {
                    "name": "default",
                    "constraints": [
                        {"contextName": "v", "operator": "SEMVER_GT", "value": "1.2.3-rc.1"},
                        {"contextName": "n", "operator": "NUM_LTE", "value": "50.5"},
                        {
                            "contextName": "s",
                            "operator": "STR_ENDS_WITH",
                            "values": ["X", "y"],
                            "caseInsensitive": True,
                        },
                    ],
                }
            ],
        },
        {
            "name": "ip",
            "enabled": True,
            "strategies": [
                {"name": "remoteAddress", "parameters": {"IPs": "10.0.0.0/8, 192.168.1.1"}}
            ],
        },
    ],
}


def _contexts(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(6)
    out = []
    for _ in range(n):
        key = "userId" if rnd.random() < 0.6 else "sessionId"
        props = {
            "v": rnd.choice(["1.2.3", "1.2.3-rc.2", "1.2.3-rc.1", "1.2.2", "2.0.0", "x"]),
            "n": rnd.choice(["50.5", "50", "51", "abc", "-1e3"]),
            "s": rnd.choice(["abcx", "ABCY", "xz", ""]),
        }
        if rnd.random() < 0.8:
            props["tenant"] = f"t{rnd.randint(0, 999)}"
        ctx: dict[str, Any] = {key: str(rnd.randint(0, 10**6)), "properties": props}
        if rnd.random() < 0.5:
            ctx["remoteAddress"] = (
                f"{rnd.choice([10, 192, 11])}.168.{rnd.randint(0, 2)}.{rnd.randint(0, 3)}"
            )
        out.append(ctx)
    return out


def test_same_answers_as_yggdrasil() -> None:
    engine = engine_mod.UnleashEngine()
    engine.take_state(json.dumps(STATE))
    ours = compile_state(STATE)
    for ctx in _contexts(2000):
        for flag in ("fr", "ops", "ip"):
            assert ours.is_enabled(flag, ctx) is engine.check_enabled(flag, ctx).is_enabled, (
                flag,
                ctx,
            )
        for flag in ("fv", "sv", "cs"):
            theirs = engine.check_variant(flag, ctx).variant
            mine = ours.get_variant(flag, ctx)
            assert (mine.name, mine.enabled, mine.feature_enabled) == (
                theirs.name,
                theirs.enabled,
                theirs.feature_enabled,
            ), (flag, ctx)


def _c(
    op: str, values: list[str] | None = None, value: str | None = None, **kw: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"contextName": "f", "operator": op, **kw}
    if values is not None:
        out["values"] = values
    if value is not None:
        out["value"] = value
    return out


OPERATORS: dict[str, dict[str, Any]] = {
    "in": _c("IN", ["a", "B", "1"]),
    "in_inv": _c("IN", ["a", "B"], inverted=True),
    "nin": _c("NOT_IN", ["a"]),
    "nin_inv": _c("NOT_IN", ["a"], inverted=True),
    "in_ci": _c("IN", ["a", "B"], caseInsensitive=True),
    "sc_ci": _c("STR_CONTAINS", ["b", "Z"], caseInsensitive=True),
    "ss": _c("STR_STARTS_WITH", ["a"]),
    "se_inv": _c("STR_ENDS_WITH", ["1"], inverted=True),
    "num_eq": _c("NUM_EQ", value="1"),
    "num_gt": _c("NUM_GT", value="0.5"),
    "num_lt_inv": _c("NUM_LT", value="1", inverted=True),
    "sem_lt": _c("SEMVER_LT", value="1.0.0"),
    "sem_eq": _c("SEMVER_EQ", value="1.0.0-beta"),
    "sem_gte": _c("SEMVER_GTE", value="0.9.0"),
    "date_a": {
        "contextName": "currentTime",
        "operator": "DATE_AFTER",
        "value": "2025-06-01T00:00:00Z",
    },
    "date_b_inv": {
        "contextName": "currentTime",
        "operator": "DATE_BEFORE",
        "value": "2025-06-01T00:00:00+02:00",
        "inverted": True,
    },
    "re": _c("REGEX", value="^[a-c]+\\d?$"),
    "re_ci": _c("REGEX", value="^AB", caseInsensitive=True),
    "re_inv": _c("REGEX", value="1$", inverted=True),
    "cidr": _c("IN_CIDR", ["10.0.0.0/8", "::1", "bad"]),
    "cidr_inv": _c("IN_CIDR", ["10.0.0.0/8"], inverted=True),
    "env_in": {"contextName": "environment", "operator": "IN", "values": ["prod"]},
}
OPERATOR_STATE: dict[str, Any] = {
    "version": 2,
    "segments": [
        {"id": 1, "constraints": [OPERATORS["sc_ci"]]},
        {"id": 2, "constraints": [OPERATORS["nin"]]},
    ],
    "features": [
        *(
            {"name": k, "enabled": True, "strategies": [{"name": "default", "constraints": [v]}]}
            for k, v in OPERATORS.items()
        ),
        {"name": "seg", "enabled": True, "strategies": [{"name": "default", "segments": [1, 2]}]},
        {
            "name": "parent",
            "enabled": True,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "50", "stickiness": "userId", "groupId": "p"},
                    "variants": _weights(("x", 1), ("y", 1)),
                }
            ],
        },
        {
            "name": "child",
            "enabled": True,
            "dependencies": [{"feature": "parent", "variants": ["x"]}],
            "strategies": [{"name": "userWithId", "parameters": {"userIds": "u1, u2,u3"}}],
        },
        {
            "name": "child2",
            "enabled": True,
            "dependencies": [{"feature": "parent", "enabled": False}],
            "strategies": [],
        },
        {
            "name": "grad",
            "enabled": True,
            "strategies": [
                {
                    "name": "gradualRolloutUserId",
                    "parameters": {"percentage": "40", "groupId": "gg"},
                }
            ],
        },
    ],
}
VALUES = ["a", "A", "b", "ab1", "AB", "1", "1.0", "0.5", " 1", "1e0", "1_0", "abc", "z1", "1.0.0"]
VALUES += ["1.0.0-beta", "0.9.1", "1.0.0-alpha", "10.1.2.3", "11.0.0.1", "::1", "", "ｂ"]
TIMES = [
    "2025-05-31T23:00:00Z",
    "2025-06-01T00:00:00Z",
    "2025-06-01T00:00:01Z",
    "2025-05-31T21:59:59Z",
]


def test_operators_segments_and_dependencies_match_yggdrasil() -> None:
    engine = engine_mod.UnleashEngine()
    engine.take_state(json.dumps(OPERATOR_STATE))
    # the engine defaults currentTime to now; give ours a clock so both do
    ours = compile_state(OPERATOR_STATE, clock=lambda: datetime.now(UTC))
    rnd = random.Random(7)
    for _ in range(800):
        ctx: dict[str, Any] = {
            "userId": rnd.choice(["u1", "u2", "u3", "u4", f"u{rnd.randint(0, 99)}"])
        }
        if rnd.random() < 0.85:
            ctx["properties"] = {"f": rnd.choice(VALUES)}
        if rnd.random() < 0.5:
            ctx["environment"] = rnd.choice(["prod", "dev"])
        if rnd.random() < 0.8:
            ctx["currentTime"] = rnd.choice(TIMES)
        for flag in ours:
            assert ours.is_enabled(flag, ctx) is engine.check_enabled(flag, ctx).is_enabled, (
                flag,
                ctx,
            )
