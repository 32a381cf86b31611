"""The rollout's state, its decision records, what the engine observes and the effects it runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shipyard.analysis.checks import CheckResult, CheckSpec, QueryResult, Snapshot
from shipyard.analysis.slices import ArmCounters
from shipyard.domain.rollouts.kinds import (
    ACTIVE_PHASES,
    AWAITED_ACTION,
    EffectKind,
    FaultKind,
    PauseReason,
    Phase,
    RecordKind,
)
from shipyard.domain.rollouts.steps import PolicySpec, SegmentRule, Step

ENGINE = "engine"


@dataclass(frozen=True, slots=True)
class ErrorStreak:
    """Errors in a row of one source (the tick, or one check's measurements).

    ``count`` counts every error since the last success; ``message``/``since`` are the current
    distinct error, which has one decision record updated in place (``key``)."""

    source: str  # "tick" or "check <name>"
    fault: FaultKind
    message: str
    count: int
    first_at: datetime  # first error of the streak
    since: datetime  # first time this message was seen
    last_at: datetime
    same: int = 1  # how many times in a row this message was seen

    @property
    def key(self) -> str:
        return f"{self.source}@{self.since.isoformat()}"

    def evidence(self, limit: int) -> dict[str, Any]:
        return {
            "streak": self.key,
            "source": self.source,
            "fault": self.fault.value,
            "error": self.message,
            "count": self.same,
            "consecutive": self.count,
            "limit": limit,
            "first_seen": self.since.isoformat(),
            "last_seen": self.last_at.isoformat(),
        }

    def then(self, fault: FaultKind, message: str, now: datetime) -> ErrorStreak:
        """The next error of this source."""
        if message == self.message:
            return ErrorStreak(
                self.source,
                fault,
                message,
                self.count + 1,
                self.first_at,
                self.since,
                now,
                self.same + 1,
            )
        return ErrorStreak(self.source, fault, message, self.count + 1, self.first_at, now, now)

    @staticmethod
    def first(source: str, fault: FaultKind, message: str, now: datetime) -> ErrorStreak:
        return ErrorStreak(source, fault, message, 1, now, now, now)


@dataclass(frozen=True, slots=True)
class AnalysisRun:
    """The measurements of the current analysis step, kept so a restart re-derives the verdict."""

    started_at: datetime
    last_at: datetime | None = None
    snapshots: tuple[Snapshot, ...] = ()
    queries: Mapping[str, tuple[QueryResult, ...]] = field(default_factory=dict)
    results: tuple[CheckResult, ...] = ()  # the latest evaluation, for status views
    errors: Mapping[str, ErrorStreak] = field(default_factory=dict)  # check -> its error streak


@dataclass(frozen=True, slots=True)
class Rollout:
    id: int
    deployment_id: int
    project: str
    environment: str
    canary: str  # the candidate being released
    stable: str | None  # what serves now; None for a first deployment
    policy: PolicySpec
    requested_by: str
    created_at: datetime
    phase: Phase = Phase.PROGRESSING
    step: int = 0
    step_started_at: datetime | None = None
    weight: float = 0.0
    segment: SegmentRule | None = None
    mirror: float = 0.0
    analysis: AnalysisRun | None = None
    # the measured analyses of steps already passed, (step, run): only read by views, never judged
    earlier_analyses: tuple[tuple[int, AnalysisRun], ...] = ()
    approvals: tuple[str, ...] = ()
    pause_reason: str = ""  # the words; ``paused_for`` is what kind of wait it is
    reason: str = ""  # why it was promoted or rolled back
    due_at: datetime | None = None  # when the engine should look again; None = wait for a human
    retire_at: datetime | None = None  # blue_green: when the old version is stopped
    old_retired: bool = False
    finished_at: datetime | None = None
    revision: int = 0  # bumped by every save; a save from a stale read is refused
    last_error: str = ""  # why the engine could not act on it last time (cleared by a save)
    paused_for: PauseReason = PauseReason.NONE
    errors: ErrorStreak | None = None  # the tick's error streak; None after a good tick
    not_done: tuple[str, ...] = ()  # what an ending could not do (rolled back incompletely)

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES or (
            self.phase is Phase.PROMOTED and not self.old_retired
        )

    @property
    def current_step(self) -> Step | None:
        steps = self.policy.steps
        return steps[self.step] if self.step < len(steps) else None

    @property
    def awaiting(self) -> str:
        """The human action a paused rollout waits for ("" when it does not wait on one)."""
        if self.phase is not Phase.PAUSED:
            return ""
        return AWAITED_ACTION[self.paused_for] or "rollout resume"


@dataclass(frozen=True, slots=True)
class Record:
    """One decision and its evidence: what was decided, at which step, by whom, and why."""

    kind: RecordKind | str
    step: int
    actor: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteIntent:
    stable: str | None
    canary: str | None = None
    weight: float = 0.0
    segment: SegmentRule | None = None
    mirror: float = 0.0


# --- effects: what the executor does after a decision is saved ---------------------------------


@dataclass(frozen=True, slots=True)
class ApplyRoute:
    """Make the router carry ``intent`` (a no-op without a router)."""

    kind = EffectKind.ROUTE
    intent: RouteIntent

    def describe(self) -> str:
        i = self.intent
        if i.canary is None:
            return f"route 100% of traffic to {i.stable}"
        return f"route {i.weight:g}% of traffic to {i.canary}"


@dataclass(frozen=True, slots=True)
class Drain:
    """Let requests already sent to a version finish before it stops."""

    kind = EffectKind.DRAIN

    def describe(self) -> str:
        return "let requests in flight finish"


@dataclass(frozen=True, slots=True)
class Retire:
    """Stop a version's instances."""

    kind = EffectKind.RETIRE
    candidate: str

    def describe(self) -> str:
        return f"stop {self.candidate}"


Effect = ApplyRoute | Drain | Retire


@dataclass(frozen=True, slots=True)
class EffectFailure:
    effect: Effect
    error: str
    fault: FaultKind = FaultKind.OTHER


@dataclass(frozen=True, slots=True)
class Decision:
    rollout: Rollout
    records: tuple[Record, ...] = ()
    effects: tuple[Effect, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.records)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the engine measured for the current analysis step at ``now``."""

    canary: ArmCounters | None = None
    baseline: ArmCounters | None = None
    queries: Mapping[str, QueryResult] = field(default_factory=dict)  # prometheus check -> value
    errors: Mapping[str, tuple[FaultKind, str]] = field(default_factory=dict)  # check -> error


@dataclass(frozen=True, slots=True)
class Wants:
    """What the engine must measure before calling decide: router counters, Prometheus checks."""

    counters: bool = False
    queries: tuple[CheckSpec, ...] = ()
    interval_s: float = 60.0  # the measurement interval: a query's {{interval}}
