"""The compiled flag state and its evaluator: the hot path of every flag check.

``compile_state`` turns an Unleash client-features document into ``FlagState`` once; calls then
run plain Python closures over the precompiled form. The domain never reads the clock: pass
``clock`` if DATE constraints should default ``currentTime`` to now.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from shipyard.domain.flags.constraints import Clock, Predicate, compile_constraints
from shipyard.domain.flags.context import Context
from shipyard.domain.flags.delta import apply_events
from shipyard.domain.flags.results import (
    DISABLED,
    DISABLED_FEATURE_ON,
    Evaluation,
    Reason,
    Variant,
)
from shipyard.domain.flags.strategies import CompiledStrategy, Rng, compile_strategy
from shipyard.domain.flags.variants import VariantSet
from shipyard.errors import InvalidError

__all__ = ["CompiledFlag", "Dependency", "FlagState", "compile_state"]


class Dependency:
    """A child's requirement on a parent flag; ``parent`` is linked after all flags compile."""

    __slots__ = ("expect_enabled", "name", "parent", "variants")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.name = str(raw.get("feature", ""))
        self.expect_enabled = raw.get("enabled", True) is not False
        self.variants = frozenset(str(v) for v in raw.get("variants") or ())
        self.parent: CompiledFlag | None = None

    def met(self, ctx: Context) -> bool:
        parent = self.parent
        if parent is None or parent.dependencies:
            return False  # missing parent, or a transitive chain (which also breaks cycles)
        if not self.expect_enabled:
            return not parent.is_enabled(ctx)
        if self.variants:
            variant = parent.get_variant(ctx)
            return variant.feature_enabled and variant.name in self.variants
        return parent.is_enabled(ctx)


class CompiledFlag:
    """One flag: kill switch, dependencies, strategies (OR) and feature variants."""

    __slots__ = ("checks", "dependencies", "enabled", "name", "strategies", "variants")

    def __init__(
        self,
        raw: Mapping[str, Any],
        segments: Mapping[int, tuple[Predicate, ...]],
        clock: Clock | None,
        rng: Rng | None,
    ) -> None:
        self.name = str(raw["name"])
        self.enabled = bool(raw.get("enabled", False))
        self.strategies = tuple(
            compile_strategy(s, self.name, segments, clock, rng)
            for s in raw.get("strategies") or ()
            if not s.get("disabled", False)
        )
        self.checks = tuple(s.check for s in self.strategies)
        self.dependencies = tuple(Dependency(d) for d in raw.get("dependencies") or ())
        raw_variants = raw.get("variants") or ()
        stickiness = (raw_variants[0].get("stickiness") if raw_variants else None) or "default"
        compiled = VariantSet(raw_variants, self.name, stickiness, rng)
        self.variants: VariantSet | None = compiled if compiled else None

    def _gate(self, ctx: Context) -> bool:
        if not self.enabled:
            return False
        for dep in self.dependencies:  # noqa: SIM110 - plain loop, hot path
            if not dep.met(ctx):
                return False
        return True

    def is_enabled(self, ctx: Context) -> bool:
        if not self.enabled:
            return False
        if self.dependencies and not self._gate(ctx):
            return False
        if not self.checks:
            return True
        for check in self.checks:  # noqa: SIM110 - a plain loop beats any() here
            if check(ctx):
                return True
        return False

    def _match(self, ctx: Context) -> CompiledStrategy | None:
        for strategy in self.strategies:
            if strategy.check(ctx):
                return strategy
        return None

    def get_variant(self, ctx: Context) -> Variant:
        if not self.enabled or (self.dependencies and not self._gate(ctx)):
            return DISABLED
        variants = self.variants
        if self.strategies:
            strategy = self._match(ctx)
            if strategy is None:
                return DISABLED
            if strategy.variants is not None:
                variants = strategy.variants
        return variants.select(ctx) if variants is not None else DISABLED_FEATURE_ON

    def evaluate(self, ctx: Context) -> Evaluation:
        """Like ``get_variant`` but also says why, for OpenFeature reasons and audits."""
        if not self.enabled:
            return Evaluation(self.name, False, DISABLED, Reason.DISABLED)
        if self.dependencies and not self._gate(ctx):
            return Evaluation(self.name, False, DISABLED, Reason.PREREQUISITE_FAILED)
        variants = self.variants
        reason = Reason.STATIC
        if self.strategies:
            strategy = self._match(ctx)
            if strategy is None:
                return Evaluation(self.name, False, DISABLED, Reason.DEFAULT)
            reason = strategy.reason
            if strategy.variants is not None:
                variants = strategy.variants
        if variants is None:
            return Evaluation(self.name, True, DISABLED_FEATURE_ON, reason)
        pinned = variants.override(ctx)
        if pinned is not None:
            return Evaluation(self.name, True, pinned, Reason.TARGETING_MATCH)
        if variants.split:
            reason = Reason.SPLIT
        return Evaluation(self.name, True, variants.select(ctx), reason)


class FlagState:
    """An immutable, compiled snapshot of all flags; safe to share between threads."""

    __slots__ = ("_flags", "raw")

    def __init__(self, flags: dict[str, CompiledFlag], raw: Mapping[str, Any]) -> None:
        self._flags = flags
        self.raw = raw
        """The source document, kept so an SDK can persist exactly what it compiled."""

    def __contains__(self, name: object) -> bool:
        return name in self._flags

    def __iter__(self) -> Iterator[str]:
        return iter(self._flags)

    def __len__(self) -> int:
        return len(self._flags)

    def flag(self, name: str) -> CompiledFlag | None:
        return self._flags.get(name)

    def is_enabled(self, name: str, ctx: Context) -> bool:
        """Unleash ``isEnabled``: unknown flags are off."""
        flag = self._flags.get(name)
        return flag is not None and flag.is_enabled(ctx)

    def get_variant(self, name: str, ctx: Context) -> Variant:
        """Unleash ``getVariant``: unknown flags give the disabled variant."""
        flag = self._flags.get(name)
        return DISABLED if flag is None else flag.get_variant(ctx)

    def evaluate(self, name: str, ctx: Context) -> Evaluation | None:
        """Outcome with reason, or ``None`` when the flag does not exist."""
        flag = self._flags.get(name)
        return None if flag is None else flag.evaluate(ctx)


def _segments(raws: Any, clock: Clock | None) -> dict[int, tuple[Predicate, ...]]:
    out: dict[int, tuple[Predicate, ...]] = {}
    for seg in raws or ():
        try:
            seg_id = int(seg["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidError(f"flag segment without a numeric id: {seg!r}") from exc
        out[seg_id] = compile_constraints(seg.get("constraints") or (), clock)
    return out


def compile_state(
    raw: Mapping[str, Any], *, clock: Clock | None = None, rng: Rng | None = None
) -> FlagState:
    """Compile an Unleash client-features document (or a delta ``{"events": [...]}``).

    ``clock`` gives ``currentTime`` to DATE constraints when the context has none; ``rng``
    (``randint``-like) replaces randomness for random stickiness, e.g. in tests.
    """
    if not isinstance(raw, Mapping):
        raise InvalidError("flag state must be a JSON object")
    if "features" not in raw and "events" in raw:
        raw = apply_events(None, raw["events"])
    features = raw.get("features") or ()
    if not isinstance(features, list | tuple):
        raise InvalidError("flag state 'features' must be a list")
    segments = _segments(raw.get("segments"), clock)
    flags: dict[str, CompiledFlag] = {}
    for feature in features:
        if not isinstance(feature, Mapping) or not feature.get("name"):
            raise InvalidError(f"flag without a name in state: {feature!r}")
        flag = CompiledFlag(feature, segments, clock, rng)
        flags[flag.name] = flag
    for flag in flags.values():
        for dep in flag.dependencies:
            dep.parent = flags.get(dep.name)
    return FlagState(flags, raw)
