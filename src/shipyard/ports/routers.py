"""The traffic-router port: move live traffic between the stable and the canary version.

A router never decides how much traffic to move (the rollout engine does); it applies a plan
and reports what is live, read back from the proxy. What it counted per version is the metrics
side's (``ports.metrics.RouterCounters``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Protocol

from shipyard.ports.metrics import Counters as Counters  # moved there; old imports keep working


class Capability(StrEnum):
    WEIGHTS = "weights"
    SEGMENTS = "segments"
    MIRROR = "mirror"


@dataclass(frozen=True, slots=True)
class RouteRef:
    project: str
    environment: str
    state_dir: Path  # the router's own directory for this environment (config, sockets, pid)
    listen_port: int  # where users reach the environment on 127.0.0.1


@dataclass(frozen=True, slots=True)
class Backend:
    """One version behind the router: its candidate name and where its instances listen."""

    candidate: str
    addresses: tuple[str, ...]  # "127.0.0.1:PORT"


@dataclass(frozen=True, slots=True)
class SegmentMatch:
    """Requests that match go to the canary: a header, a cookie or a path prefix, or its negation."""

    kind: str  # "header" | "cookie" | "path"
    name: str = ""  # header or cookie name
    value: str | None = None  # exact value; None with kind cookie/header means "present"
    negate: bool = False  # e.g. requests WITHOUT a session cookie = logged-out users
    regex: str | None = None  # header only: the value must match this (unanchored), not value


@dataclass(frozen=True, slots=True)
class RoutePlan:
    stable: Backend | None
    canary: Backend | None = None
    canary_weight: float = 0.0  # percent of the non-segment traffic, 0..100
    segment: SegmentMatch | None = None  # matching requests go to the canary (all of them)
    mirror_percent: float = 0.0  # copies of stable traffic sent to the canary, answers dropped


class TrafficRouter(Protocol):
    kind: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    def ensure(self, route: RouteRef) -> None:
        """Start (or adopt after a restart) the proxy for this environment; idempotent.

        A proxy that died comes back with the last plan it was given (supervision calls this)."""

    def apply(self, route: RouteRef, plan: RoutePlan) -> None:
        """Make the plan live without dropping requests; idempotent."""

    def observe(self, route: RouteRef) -> RoutePlan:
        """What is live now, read back from the proxy itself."""

    def stop(self, route: RouteRef) -> None: ...


@dataclass(frozen=True)
class MissingBinary:
    """A router kind needs a program this server does not have (found when config is read)."""

    kind: str
    binary: str
    install: str  # how to get it, e.g. "apt-get install haproxy"
