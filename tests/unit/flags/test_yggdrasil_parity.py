"""Differential test: same state, same random contexts, same answers as Unleash's own engine.

Runs only where ``yggdrasil-engine`` is installed (``pip install -e .[bench]``). Contexts always
carry a userId or sessionId so no answer depends on random stickiness.
"""

from __future__ import annotations

import json
import random
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
