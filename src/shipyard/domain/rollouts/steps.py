"""Policy steps as a typed union: one frozen dataclass per step kind, and the policy itself.

Blue-green is not a second engine: ``PolicySpec.blue_green`` expands it into canary steps (a
preview segment, preview checks, the policy's steps, a switch gate), each labelled with why the
engine added it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from shipyard.analysis.checks import CheckSpec
from shipyard.domain.rollouts.kinds import OnError, StepKind, Strategy

PREVIEW_HEADER = "x-shipyard-preview"
DEFAULT_ERROR_LIMIT = 4  # consecutive errors before on_error acts (Argo Rollouts uses 4 too)


@dataclass(frozen=True, slots=True)
class SegmentRule:
    kind: str  # "header" | "cookie" | "path": the router's match kinds (ports.routers)
    name: str = ""
    value: str | None = None
    regex: str | None = None
    negate: bool = False

    def describe(self) -> str:
        what = {"header": f"header {self.name}", "cookie": f"cookie {self.name}"}.get(
            self.kind, "path"
        )
        if self.regex is not None:
            cond = f"{what} ~ {self.regex!r}"
        elif self.value is None:
            cond = f"{what} present"
        else:
            cond = f"{what} = {self.value!r}" if self.kind != "path" else f"path {self.value}*"
        return f"not ({cond})" if self.negate else cond


@dataclass(frozen=True, slots=True)
class SetWeight:
    kind: ClassVar[StepKind] = StepKind.SET_WEIGHT
    weight: float
    label: str = ""

    def describe(self) -> str:
        return self.label or f"set weight {self.weight:g}%"


@dataclass(frozen=True, slots=True)
class Pause:
    kind: ClassVar[StepKind] = StepKind.PAUSE
    duration_s: float | None = None  # None: until promoted
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        if self.duration_s is None:
            return "pause until promoted"
        return f"pause {self.duration_s:g}s"


@dataclass(frozen=True, slots=True)
class Analysis:
    kind: ClassVar[StepKind] = StepKind.ANALYSIS
    checks: tuple[CheckSpec, ...] = ()
    duration_s: float | None = None  # the window; None: five intervals
    interval_s: float | None = None  # None: the shortest check interval
    label: str = ""

    def describe(self) -> str:
        return self.label or "analysis: " + ", ".join(c.name for c in self.checks)

    @property
    def interval(self) -> float:
        if self.interval_s is not None:
            return self.interval_s
        return min((c.interval_s for c in self.checks), default=60.0)

    @property
    def window(self) -> float:
        """Without a duration an analysis runs five intervals (Argo runs one measurement)."""
        return self.duration_s if self.duration_s is not None else 5 * self.interval


@dataclass(frozen=True, slots=True)
class Approval:
    kind: ClassVar[StepKind] = StepKind.APPROVAL
    required: int = 1
    approvers: tuple[str, ...] = ()
    label: str = ""

    def describe(self) -> str:
        return self.label or f"approval by {self.required}"


@dataclass(frozen=True, slots=True)
class Segment:
    kind: ClassVar[StepKind] = StepKind.SEGMENT
    segment: SegmentRule
    label: str = ""

    def describe(self) -> str:
        return self.label or f"segment: {self.segment.describe()}"


@dataclass(frozen=True, slots=True)
class Mirror:
    kind: ClassVar[StepKind] = StepKind.MIRROR
    mirror: float
    label: str = ""

    def describe(self) -> str:
        return self.label or f"mirror {self.mirror:g}%"


Step = SetWeight | Pause | Analysis | Approval | Segment | Mirror
StepSpec = Step  # the name callers used before steps were typed

STEP_TYPES: dict[StepKind, type[Step]] = {
    t.kind: t for t in (SetWeight, Pause, Analysis, Approval, Segment, Mirror)
}


def preview(segment: SegmentRule = SegmentRule("header", PREVIEW_HEADER)) -> Segment:
    """Blue-green's first phase: the new colour takes no live traffic, only preview requests."""
    return Segment(
        segment, label=f"preview: requests with header {PREVIEW_HEADER} go to the new version"
    )


def preview_checks(checks: Sequence[CheckSpec], interval_s: float | None) -> Analysis:
    """Blue-green's second phase: the preview checks judge the new colour before any switch."""
    return Analysis(tuple(checks), interval_s=interval_s, label="preview checks")


def switch_gate() -> Pause:
    """Blue-green's last phase without ``auto_switch``: a human switches all traffic."""
    return Pause(label="waiting for promote to switch all traffic")


@dataclass(frozen=True, slots=True)
class PolicySpec:
    name: str
    strategy: str = Strategy.CANARY
    steps: tuple[Step, ...] = ()
    keep_old_for_s: float = 0.0  # blue_green: the old version stays ready this long
    router: str = "haproxy"  # haproxy: proxy weights; flag: the rollout of ``flag`` moves
    flag: str | None = None
    consecutive_error_limit: int = DEFAULT_ERROR_LIMIT
    on_error: OnError = OnError.ABORT

    @property
    def flag_routed(self) -> bool:
        """The cohorts are the flag's on and off users, not two running versions."""
        return self.router == "flag" and self.flag is not None

    def error_limit(self, check: CheckSpec | None = None) -> int:
        """A check's own ``consecutive_error_limit``, else the policy's."""
        own = check.consecutive_error_limit if check is not None else None
        return own if own is not None else self.consecutive_error_limit

    @staticmethod
    def blue_green(
        name: str,
        steps: Sequence[Step],
        checks: Sequence[CheckSpec],
        *,
        keep_old_for_s: float,
        auto_switch: bool,
        interval_s: float | None = None,
        consecutive_error_limit: int = DEFAULT_ERROR_LIMIT,
        on_error: OnError = OnError.ABORT,
    ) -> PolicySpec:
        """Blue-green as canary primitives: 0% live traffic, the new colour reachable through a
        preview header, preview checks, the policy's steps, then one switch of 100%."""
        expanded: list[Step] = [preview()]
        if checks:
            expanded.append(preview_checks(checks, interval_s))
        expanded.extend(steps)
        if not auto_switch:
            expanded.append(switch_gate())
        return PolicySpec(
            name,
            Strategy.BLUE_GREEN,
            tuple(expanded),
            keep_old_for_s,
            consecutive_error_limit=consecutive_error_limit,
            on_error=on_error,
        )
