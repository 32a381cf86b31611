"""Plan checks every router shares: one readable InvalidError per mistake, before touching anything."""

from __future__ import annotations

import ipaddress
import math

from shipyard.errors import InvalidError
from shipyard.ports.routers import Backend, RoutePlan

SEGMENT_KINDS = ("header", "cookie", "path")


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
        value = segment.value or ""
        if not value.startswith("/") or any(c.isspace() or c == "#" for c in value):
            raise InvalidError(f"a path segment needs a value starting with '/', got {value!r}")
        return
    name = segment.name
    token = "!#$%&'*+-.^_`|~"
    if not name or not all(c.isascii() and (c.isalnum() or c in token) for c in name):
        raise InvalidError(f"bad {segment.kind} name {name!r} for a segment route")
    if segment.value is not None and any(c in "\r\n" for c in segment.value):
        raise InvalidError(f"a {segment.kind} segment value cannot hold a line break")
