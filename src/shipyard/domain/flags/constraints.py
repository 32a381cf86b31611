"""Compiling Unleash constraints into plain predicates.

Everything that can be decided once (value sets, lower-cased needles, parsed numbers, dates,
versions, networks, RE2 programs) is done here; the returned closure only reads the context.
Semantics follow the Unleash client specification: a missing field fails every operator except
NOT_IN, ``inverted`` flips the final result, an unknown operator or invalid operand is false.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import re2

from shipyard.domain.flags.context import Context, Getter, as_text, field_getter
from shipyard.domain.flags.semver import SemverKey, semver_key

__all__ = ["OPERATORS", "Clock", "Predicate", "compile_constraint", "compile_constraints"]

Predicate = Callable[[Context], bool]
Clock = Callable[[], datetime]


def _never(ctx: Context) -> bool:
    return False


def _always(ctx: Context) -> bool:
    return True


def _values(raw: Mapping[str, Any]) -> list[str]:
    values = raw.get("values")
    out = [v for v in (as_text(x) for x in values or ()) if v is not None]
    if not out and raw.get("value") is not None:
        single = as_text(raw["value"])
        if single is not None:
            out = [single]
    return out


def _single(raw: Mapping[str, Any]) -> str | None:
    if raw.get("value") is not None:
        return as_text(raw["value"])
    values = raw.get("values") or ()
    return as_text(values[0]) if values else None


def _in(get: Getter, values: list[str]) -> Predicate:
    allowed = frozenset(values)

    def check(ctx: Context) -> bool:
        return get(ctx) in allowed

    return check


def _not_in(get: Getter, values: list[str]) -> Predicate:
    allowed = frozenset(values)

    def check(ctx: Context) -> bool:
        return get(ctx) not in allowed

    return check


def _string(op: str, get: Getter, values: list[str], fold: bool) -> Predicate:
    needles = tuple(v.lower() for v in values) if fold else tuple(values)

    if op == "STR_CONTAINS":

        def contains(ctx: Context) -> bool:
            v = get(ctx)
            if v is None:
                return False
            if fold:
                v = v.lower()
            return any(n in v for n in needles)

        return contains

    ends = op == "STR_ENDS_WITH"

    def affix(ctx: Context) -> bool:
        v = get(ctx)
        if v is None:
            return False
        if fold:
            v = v.lower()
        return v.endswith(needles) if ends else v.startswith(needles)

    return affix


def _float(text: str | None) -> float | None:
    """Parse like Rust's ``f64::from_str`` (yggdrasil): no surrounding space, no ``_``."""
    if text is None or "_" in text or text != text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: a == b,
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
    "AFTER": lambda a, b: a > b,
    "BEFORE": lambda a, b: a < b,
}


def _number(op: str, get: Getter, operand: str | None) -> Predicate:
    target = _float(operand)
    if target is None:
        return _never
    cmp = _COMPARE[op]

    def check(ctx: Context) -> bool:
        v = _float(get(ctx))
        return v is not None and cmp(v, target)

    return check


def _parse_date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _moment(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return _parse_date(as_text(value))


def _date(op: str, name: str, operand: str | None, clock: Clock | None) -> Predicate:
    target = _parse_date(operand)
    if target is None:
        return _never
    cmp = _COMPARE[op]
    if name != "currentTime":
        get = field_getter(name)

        def check_field(ctx: Context) -> bool:
            when = _parse_date(get(ctx))
            return when is not None and cmp(when, target)

        return check_field

    def check_now(ctx: Context) -> bool:
        raw = ctx.get("currentTime")
        if raw is None:
            if clock is None:
                return False
            when: datetime | None = clock()
        else:
            when = _moment(raw)
        return when is not None and cmp(when, target)

    return check_now


def _semver(op: str, get: Getter, operand: str | None) -> Predicate:
    target: SemverKey | None = semver_key(operand) if operand is not None else None
    if target is None:
        return _never
    cmp = _COMPARE[op]

    def check(ctx: Context) -> bool:
        v = get(ctx)
        if v is None:
            return False
        key = semver_key(v)
        return key is not None and cmp(key, target)

    return check


def _regex(get: Getter, patterns: Sequence[str], fold: bool) -> Predicate:
    options = re2.Options()
    options.case_sensitive = not fold
    options.log_errors = False
    programs = []
    for pattern in patterns:
        try:
            programs.append(re2.compile(pattern, options))
        except re2.error:
            continue  # RE2 rejects it (lookaround, back-reference, syntax): it matches nothing
    if not programs:
        return _never
    searches = tuple(p.search for p in programs)

    def check(ctx: Context) -> bool:
        v = get(ctx)
        if v is None:
            return False
        return any(search(v) is not None for search in searches)

    return check


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """Parse IPs and CIDRs, skipping invalid entries as Unleash does."""
    nets = []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue
    return tuple(nets)


def address_matcher(get: Getter, entries: Sequence[str]) -> Predicate:
    """True when the context address is one of ``entries`` (exact IPs or CIDR ranges)."""
    nets = parse_networks(entries)
    if not nets:
        return _never
    exact = frozenset(str(n.network_address) for n in nets if n.num_addresses == 1)
    ranges = tuple(n for n in nets if n.num_addresses > 1)

    def check(ctx: Context) -> bool:
        v = get(ctx)
        if v is None:
            return False
        if v in exact:
            return True
        try:
            addr = ipaddress.ip_address(v.strip())
        except ValueError:
            return False
        if str(addr) in exact:
            return True
        return any(addr in net for net in ranges)

    return check


OPERATORS = frozenset(
    {
        "IN",
        "NOT_IN",
        "STR_CONTAINS",
        "STR_STARTS_WITH",
        "STR_ENDS_WITH",
        "NUM_EQ",
        "NUM_GT",
        "NUM_GTE",
        "NUM_LT",
        "NUM_LTE",
        "DATE_AFTER",
        "DATE_BEFORE",
        "SEMVER_EQ",
        "SEMVER_GT",
        "SEMVER_LT",
        "SEMVER_GTE",
        "SEMVER_LTE",
        "REGEX",
        "IN_CIDR",
    }
)


def _operator(op: str, raw: Mapping[str, Any], clock: Clock | None) -> Predicate:
    name = str(raw.get("contextName", ""))
    get = field_getter(name)
    fold = bool(raw.get("caseInsensitive", False))
    family, _, suffix = op.partition("_")
    if op == "IN":
        return _in(get, _values(raw))
    if op == "NOT_IN":
        return _not_in(get, _values(raw))
    if family == "STR":
        return _string(op, get, _values(raw), fold)
    if family == "NUM":
        return _number(suffix, get, _single(raw))
    if family == "DATE":
        return _date(suffix, name, _single(raw), clock)
    if family == "SEMVER":
        return _semver(suffix, get, _single(raw))
    if op == "REGEX":
        return _regex(get, _values(raw), fold)
    return address_matcher(get, _values(raw))  # IN_CIDR


def compile_constraint(raw: Mapping[str, Any], clock: Clock | None = None) -> Predicate:
    """Compile one constraint; ``clock`` supplies ``currentTime`` when the context has none."""
    op = str(raw.get("operator", ""))
    if op not in OPERATORS:
        return _never  # unknown operators are false, even when inverted
    check = _operator(op, raw, clock)
    if not raw.get("inverted", False):
        return check

    def inverted(ctx: Context) -> bool:
        return not check(ctx)

    return inverted


def compile_constraints(
    raws: Sequence[Mapping[str, Any]], clock: Clock | None = None
) -> tuple[Predicate, ...]:
    return tuple(compile_constraint(raw, clock) for raw in raws)


def all_of(checks: Sequence[Predicate]) -> Predicate:
    """AND a list of predicates, specialised for the common short lists."""
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks

        def both(ctx: Context) -> bool:
            return a(ctx) and b(ctx)

        return both
    items = tuple(checks)

    def every(ctx: Context) -> bool:
        for check in items:  # noqa: SIM110 - a plain loop beats all() on this hot path
            if not check(ctx):
                return False
        return True

    return every
