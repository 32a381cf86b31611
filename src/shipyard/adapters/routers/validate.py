"""What every router shares: plan checks (one readable InvalidError per mistake, before touching
anything) and the latency histogram's bucket bounds."""

from __future__ import annotations

import bisect
import ipaddress
import math
import re
from collections.abc import Iterable, Sequence

from shipyard.errors import InvalidError
from shipyard.ports.routers import Backend, RoutePlan

SEGMENT_KINDS = ("header", "cookie", "path")
MAX_REGEX = 512  # characters of a header regex

# Upper bounds (seconds) of Counters.latency_buckets, Prometheus' defaults plus 10 s; inf last.
LATENCY_BOUNDS: tuple[float, ...] = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    math.inf,
)


def bucket_of(seconds: float) -> int:
    """Index in LATENCY_BOUNDS of the first bound ``>= seconds`` (Prometheus' ``le``)."""
    return bisect.bisect_left(LATENCY_BOUNDS, seconds)


def cumulative_buckets(per_bucket: Sequence[float]) -> dict[float, float]:
    """Per-bucket counts (one per bound of LATENCY_BOUNDS) -> cumulative ``{le: count}``."""
    if len(per_bucket) != len(LATENCY_BOUNDS):
        raise ValueError(f"expected {len(LATENCY_BOUNDS)} bucket counts, got {len(per_bucket)}")
    out: dict[float, float] = {}
    total = 0.0
    for bound, count in zip(LATENCY_BOUNDS, per_bucket, strict=True):
        total += count
        out[bound] = total
    return out


def count_latencies(latencies: Iterable[float]) -> list[int]:
    """Per-bucket counts of ``latencies`` (seconds)."""
    counts = [0] * len(LATENCY_BOUNDS)
    for seconds in latencies:
        if not seconds >= 0:
            raise InvalidError(f"a latency must be a number of seconds >= 0, got {seconds!r}")
        counts[bucket_of(seconds)] += 1
    return counts


def parse_address(address: str) -> tuple[str, int]:
    """ "127.0.0.1:8123" or "[::1]:8123" → (host, port); the host must be an IP literal."""
    host, sep, port_text = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        if not sep:
            raise ValueError
        ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise InvalidError(f"bad backend address {address!r}: expected IP:PORT") from None
    if not 0 < port < 65536:
        raise InvalidError(f"bad backend address {address!r}: port must be 1..65535")
    return host, port


def _check_backend(role: str, backend: Backend, max_addresses: int | None) -> None:
    if not backend.candidate or any(c.isspace() for c in backend.candidate):
        raise InvalidError(f"{role} candidate name {backend.candidate!r} is empty or has spaces")
    if not backend.addresses:
        raise InvalidError(f"{role} {backend.candidate} has no addresses")
    if len(set(backend.addresses)) != len(backend.addresses):
        raise InvalidError(f"{role} {backend.candidate} lists an address twice")
    if max_addresses is not None and len(backend.addresses) > max_addresses:
        raise InvalidError(
            f"{role} {backend.candidate} has {len(backend.addresses)} addresses; "
            f"this router has {max_addresses} slots per version"
        )
    for address in backend.addresses:
        parse_address(address)


def check_plan(plan: RoutePlan, *, max_addresses: int | None = None, mirror: bool = False) -> None:
    """Raise InvalidError when the plan cannot be applied as written."""
    if plan.stable is not None:
        _check_backend("stable", plan.stable, max_addresses)
    if plan.canary is not None:
        _check_backend("canary", plan.canary, max_addresses)
        if plan.stable is not None and plan.stable.candidate == plan.canary.candidate:
            raise InvalidError(f"stable and canary are both {plan.canary.candidate}")
    weight = plan.canary_weight
    if not isinstance(weight, int | float) or math.isnan(weight) or not 0 <= weight <= 100:
        raise InvalidError(f"canary_weight must be within 0..100, got {weight!r}")
    if weight > 0 and plan.canary is None:
        raise InvalidError(f"canary_weight is {weight:g} but the plan has no canary")
    mirror_pct = plan.mirror_percent
    if math.isnan(mirror_pct) or not 0 <= mirror_pct <= 100:
        raise InvalidError(f"mirror_percent must be within 0..100, got {mirror_pct!r}")
    if mirror_pct > 0 and not mirror:
        raise InvalidError("this router cannot mirror traffic (mirror_percent must be 0)")
    if mirror_pct > 0 and (plan.canary is None or plan.stable is None):
        raise InvalidError("mirroring needs both a stable and a canary")
    _check_segment(plan)


def _check_segment(plan: RoutePlan) -> None:
    segment = plan.segment
    if segment is None:
        return
    if plan.canary is None:
        raise InvalidError("a segment route needs a canary to send the segment to")
    if segment.kind not in SEGMENT_KINDS:
        raise InvalidError(
            f"unknown segment kind {segment.kind!r}; known: {', '.join(SEGMENT_KINDS)}"
        )
    if segment.kind == "path":
        if segment.regex is not None:
            raise InvalidError("a path segment takes a prefix as its value, not a regex")
        value = segment.value or ""
        if not value.startswith("/") or any(c.isspace() or c == "#" for c in value):
            raise InvalidError(f"a path segment needs a value starting with '/', got {value!r}")
        return
    if segment.regex is not None:
        _check_regex(segment.kind, segment.value, segment.regex)
    name = segment.name
    token = "!#$%&'*+-.^_`|~"
    if not name or not all(c.isascii() and (c.isalnum() or c in token) for c in name):
        raise InvalidError(f"bad {segment.kind} name {name!r} for a segment route")
    if segment.value is not None and any(c in "\r\n" for c in segment.value):
        raise InvalidError(f"a {segment.kind} segment value cannot hold a line break")


def _check_regex(kind: str, value: str | None, regex: str) -> None:
    """A regex every router can run: Python ``re`` syntax that PCRE reads the same way."""
    if kind != "header":
        raise InvalidError(f"only a header segment can match a regex, not a {kind} segment")
    if value is not None:
        raise InvalidError("a header segment matches a value or a regex, not both")
    if not regex:
        raise InvalidError(
            "a header segment regex cannot be empty (leave value unset for 'present')"
        )
    if len(regex) > MAX_REGEX:
        raise InvalidError(f"a header segment regex is at most {MAX_REGEX} characters")
    if not all(" " <= c <= "~" for c in regex):
        raise InvalidError("a header segment regex must be printable ASCII (write others as \\xHH)")
    try:
        re.compile(regex)
    except re.error as exc:
        raise InvalidError(f"bad header segment regex {regex!r}: {exc}") from None
    if re.search(r"\(\?[a-zA-Z^-]*x", regex):  # spaces and '#' would mean something else
        raise InvalidError("a header segment regex cannot use verbose mode (?x)")
