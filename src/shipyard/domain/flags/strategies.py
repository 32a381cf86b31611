"""Compiling Unleash activation strategies, including Shipyard's sub-percent rollouts.

``flexibleRollout`` accepts, besides Unleash's whole-percent ``rollout``, a fractional
``rollout`` (``"0.1"``) or the extension parameter ``rolloutPpm`` (parts per million of users).
Whole percentages take exactly Unleash's path; fractions refine the same buckets (see
``hashing.fine_position``), so a cohort only grows as the rollout rises, across the boundary too.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import mmh3

from shipyard.domain.flags.constraints import (
    Clock,
    Predicate,
    address_matcher,
    all_of,
    compile_constraints,
)
from shipyard.domain.flags.context import Context, Getter, as_text, field_getter
from shipyard.domain.flags.hashing import PPM, fine_position
from shipyard.domain.flags.results import Reason
from shipyard.domain.flags.variants import VariantSet, stickiness_getter

__all__ = ["STRATEGIES", "CompiledStrategy", "Rng", "compile_strategy", "rollout_ppm"]

Rng = Callable[[int, int], int]
_PER_PERCENT = PPM // 100


def _never(ctx: Context) -> bool:
    return False


def _always(ctx: Context) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class CompiledStrategy:
    """One strategy ready to run: its full predicate, its variants and the reason it implies."""

    check: Predicate
    variants: VariantSet | None
    reason: Reason


def rollout_ppm(value: object) -> int:
    """Parse a rollout percentage (``"55"``, ``"0.1"``) into parts per million, clamped."""
    text = as_text(value)
    if text is None:
        return 0
    try:
        pct = Decimal(text.strip())
    except InvalidOperation:
        return 0
    if not pct.is_finite():
        return 0
    return max(0, min(PPM, int(pct * _PER_PERCENT)))


def _bucketed(
    get: Getter, group_id: str, ppm: int, rng: Rng, random_when_missing: bool
) -> Predicate:
    """In iff the user's position is below ``ppm``; whole percents use Unleash's exact formula."""
    if ppm <= 0:
        return _never
    prefix = f"{group_id}:"
    if ppm >= PPM:
        if random_when_missing:
            return _always

        def present(ctx: Context) -> bool:
            return get(ctx) is not None

        return present
    whole = ppm % _PER_PERCENT == 0
    percent = ppm // _PER_PERCENT

    def check(ctx: Context) -> bool:
        stick = get(ctx)
        if stick is None:
            if not random_when_missing:
                return False
            return rng(0, PPM - 1) < ppm
        h = int(mmh3.hash(prefix + stick, 0, False))
        if whole:
            return h % 100 < percent
        return fine_position(h) < ppm

    return check


def _ppm_param(params: Mapping[str, Any], percent_key: str) -> int:
    if params.get("rolloutPpm") is not None:
        try:
            return max(0, min(PPM, int(str(params["rolloutPpm"]).strip())))
        except ValueError:
            return 0
    return rollout_ppm(params.get(percent_key))


def _flexible(params: Mapping[str, Any], flag: str, rng: Rng) -> tuple[Predicate, bool]:
    stickiness = as_text(params.get("stickiness")) or "default"
    group_id = as_text(params.get("groupId")) or flag
    ppm = _ppm_param(params, "rollout")
    default = stickiness == "default"
    get = stickiness_getter(stickiness)
    return _bucketed(get, group_id, ppm, rng, random_when_missing=default), ppm < PPM


def _split_list(value: object) -> list[str]:
    text = as_text(value) or ""
    return [part.strip() for part in text.split(",") if part.strip()]


def _base(name: str, params: Mapping[str, Any], flag: str, rng: Rng) -> tuple[Predicate, Reason]:
    if name == "default":
        return _always, Reason.STATIC
    if name == "flexibleRollout":
        check, partial = _flexible(params, flag, rng)
        return check, Reason.SPLIT if partial else Reason.STATIC
    if name in ("gradualRolloutUserId", "gradualRolloutSessionId"):
        field = "userId" if name == "gradualRolloutUserId" else "sessionId"
        group_id = as_text(params.get("groupId")) or flag
        ppm = _ppm_param(params, "percentage")
        return _bucketed(field_getter(field), group_id, ppm, rng, False), Reason.SPLIT
    if name == "gradualRolloutRandom":
        ppm = _ppm_param(params, "percentage")

        def lottery(ctx: Context) -> bool:
            return rng(0, PPM - 1) < ppm

        return (_never if ppm <= 0 else _always if ppm >= PPM else lottery), Reason.SPLIT
    if name == "userWithId":
        ids = frozenset(_split_list(params.get("userIds")))
        get_user = field_getter("userId")

        def listed(ctx: Context) -> bool:
            return get_user(ctx) in ids

        return listed, Reason.TARGETING_MATCH
    if name == "remoteAddress":
        return address_matcher(field_getter("remoteAddress"), _split_list(params.get("IPs"))), (
            Reason.TARGETING_MATCH
        )
    if name == "applicationHostname":
        hosts = frozenset(h.lower() for h in _split_list(params.get("hostNames")))
        get_host = field_getter("hostname")

        def on_host(ctx: Context) -> bool:
            host = get_host(ctx)
            return host is not None and host.lower() in hosts

        return on_host, Reason.TARGETING_MATCH
    return _never, Reason.DEFAULT  # unknown/custom strategies are off, as in Unleash SDKs


def compile_strategy(
    raw: Mapping[str, Any],
    flag: str,
    segments: Mapping[int, Sequence[Predicate]],
    clock: Clock | None = None,
    rng: Rng | None = None,
) -> CompiledStrategy:
    """Compile a strategy of flag ``flag``; unknown segment ids make it never match."""
    rng = rng or random.randint
    params: Mapping[str, Any] = raw.get("parameters") or {}
    base, reason = _base(str(raw.get("name", "")), params, flag, rng)
    checks = list(compile_constraints(raw.get("constraints") or (), clock))
    for seg_id in raw.get("segments") or ():
        try:
            seg = segments.get(int(seg_id))
        except (TypeError, ValueError):
            seg = None
        if seg is None:
            base = _never
            break
        checks.extend(seg)
    if checks and reason is Reason.STATIC:
        reason = Reason.TARGETING_MATCH
    check = _never if base is _never else all_of([*checks, base] if base is not _always else checks)
    variants = None
    if raw.get("variants"):
        group_id = as_text(params.get("groupId")) or flag
        stickiness = as_text(params.get("stickiness")) or "default"
        compiled = VariantSet(raw["variants"], group_id, stickiness, rng)
        variants = compiled if compiled else None
    return CompiledStrategy(check, variants, reason)


# The strategy names this evaluator knows; a definition naming another is refused when stored.
STRATEGIES = frozenset(
    {
        "default",
        "userWithId",
        "flexibleRollout",
        "gradualRolloutUserId",
        "gradualRolloutSessionId",
        "gradualRolloutRandom",
        "remoteAddress",
        "applicationHostname",
    }
)
