"""Weighted variant selection with overrides and stickiness, Unleash-compatible.

Feature variants take stickiness from the first variant and group by the flag name; strategy
variants inherit the strategy's ``stickiness`` and ``groupId``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import mmh3

from shipyard.domain.flags.context import Context, Getter, as_text, field_getter
from shipyard.domain.flags.hashing import VARIANT_SEED
from shipyard.domain.flags.results import DISABLED_FEATURE_ON, Variant

__all__ = ["VariantSet", "stickiness_getter"]

_DEFAULT_ORDER = ("userId", "sessionId")
"""As in Unleash's yggdrasil engine: no remoteAddress, then random."""


def stickiness_getter(stickiness: str | None, order: Sequence[str] = _DEFAULT_ORDER) -> Getter:
    """Accessor for the value to hash; ``default`` tries ``order`` and gives ``None`` (random)."""
    if stickiness and stickiness != "default":
        return field_getter(stickiness)
    getters = tuple(field_getter(name) for name in order)

    def first_present(ctx: Context) -> str | None:
        for get in getters:
            v = get(ctx)
            if v:
                return v
        return None

    return first_present


def _variant(raw: Mapping[str, Any]) -> Variant:
    payload = raw.get("payload")
    if isinstance(payload, Mapping):
        return Variant(
            str(raw.get("name", "")),
            enabled=True,
            feature_enabled=True,
            payload_type=as_text(payload.get("type")),
            payload_value=as_text(payload.get("value")),
        )
    return Variant(str(raw.get("name", "")), enabled=True, feature_enabled=True)


class VariantSet:
    """Compiled variants of a flag or strategy; ``select`` is the per-call hot path."""

    __slots__ = ("_bounds", "_only", "_overrides", "_prefix", "_rng", "_stick", "_total", "split")

    def __init__(
        self,
        raws: Sequence[Mapping[str, Any]],
        group_id: str,
        stickiness: str | None,
        rng: Callable[[int, int], int] | None = None,
    ) -> None:
        variants = [_variant(raw) for raw in raws]
        weights = [max(0, int(raw.get("weight", 0) or 0)) for raw in raws]
        bounds: list[tuple[int, Variant]] = []
        total = 0
        for variant, weight in zip(variants, weights, strict=True):
            if weight > 0:
                total += weight
                bounds.append((total, variant))
        self._bounds = tuple(bounds)
        self._total = total
        self._only = bounds[0][1] if len(bounds) == 1 else None
        self._prefix = f"{group_id}:"
        self._stick = stickiness_getter(stickiness)
        self._rng = rng or random.randint
        overrides = []
        for raw, variant in zip(raws, variants, strict=True):
            for override in raw.get("overrides") or ():
                values = frozenset(
                    v for v in (as_text(x) for x in override.get("values") or ()) if v
                )
                overrides.append(
                    (field_getter(str(override.get("contextName", ""))), values, variant)
                )
        self._overrides = tuple(overrides)
        self.split = len(bounds) > 1
        """True when the choice depends on hashing, which OpenFeature calls a SPLIT."""

    def __bool__(self) -> bool:
        return self._total > 0

    def override(self, ctx: Context) -> Variant | None:
        """The variant an override pins this context to, if any."""
        for get, values, variant in self._overrides:
            if get(ctx) in values:
                return variant
        return None

    def select(self, ctx: Context) -> Variant:
        if self._overrides:
            pinned = self.override(ctx)
            if pinned is not None:
                return pinned
        if self._only is not None:
            return self._only
        total = self._total
        if total == 0:
            return DISABLED_FEATURE_ON
        stick = self._stick(ctx)
        if stick is None:
            target = self._rng(1, total)
        else:
            target = int(mmh3.hash(self._prefix + stick, VARIANT_SEED, False)) % total + 1
        for bound, variant in self._bounds:
            if target <= bound:
                return variant
        return self._bounds[-1][1]
