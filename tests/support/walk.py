"""What the model-based fault tests of the rollout engine share: the coverage they count, one
random step (a weighted pick among actions and faults, a refusal being a valid answer), and
what "waits on a named human action" means. Each test keeps its own world, moves and checks."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from shipyard.domain.rollouts import Phase, Rollout
from shipyard.errors import ShipyardError

W = TypeVar("W")
Moves = Mapping[str, tuple[int, Callable[[W], None]]]  # name -> (weight, what it does)


@dataclass
class Coverage:
    phases: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)  # tried
    accepted: Counter[str] = field(default_factory=Counter)  # not refused
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


def take_step(
    world: W, rng: random.Random, cov: Coverage, actions: Moves[W], faults: Moves[W]
) -> tuple[str, str]:
    """One move picked by weight and done: its name, and "ok" or why it was refused (a typed
    refusal is a valid answer; the invariants check what it left)."""
    moves = {**actions, **faults}
    names = list(moves)
    name = rng.choices(names, weights=[moves[n][0] for n in names])[0]
    (cov.faults if name in faults else cov.actions)[name] += 1
    try:
        moves[name][1](world)
    except ShipyardError as exc:
        return name, f"refused: {exc.message}"
    cov.accepted[name] += 1
    return name, "ok"


def waits_on_human(r: Rollout) -> bool:
    return r.phase is Phase.PAUSED and bool(r.pause_reason)
