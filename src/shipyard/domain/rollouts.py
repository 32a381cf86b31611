"""Rollouts: how a running deployment moves live traffic, as a functional core.

::

    progressing ──(steps done)──────────▶ promoting ──(route 100% new, old retired)──▶ promoted
       │   ▲  │                                                                          ▲
       │   │  └─(analysis failed / abort)─▶ aborting ──(route 100% stable)──▶ rolled_back │
       ▼   │                                   ▲                                         │
      paused (pause {}, approval, inconclusive analysis, a human) ──promote --full──────┘

``decide(rollout, now, observation)`` runs the policy from the current step as far as it can go
at ``now`` and returns the next rollout, the decisions with their evidence and when it is due
again. ``promote``/``pause``/``resume``/``abort`` are the human commands. ``route_of`` says which
traffic split the rollout wants live; the engine makes the router match it after every save, so
a crash between the two is repaired by the next tick. Time is always passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shipyard.analysis.checks import CheckResult, CheckSpec, QueryResult, Snapshot, evaluate
from shipyard.analysis.samples import Verdict
from shipyard.analysis.slices import ArmCounters
from shipyard.domain.auth import Role
from shipyard.errors import ConflictError, ErrorCode, PermissionDenied, RefusedError

__all__ = [
    "ACTIVE_PHASES",
    "AnalysisRun",
    "Decision",
    "Observation",
    "Phase",
    "PolicySpec",
    "Record",
    "Rollout",
    "RouteIntent",
    "SegmentRule",
    "StepSpec",
    "abort",
    "decide",
    "finish",
    "flag_percent",
    "pause",
    "promote",
    "resumable",
    "resume",
    "route_of",
    "start",
    "wants",
]

PREVIEW_HEADER = "x-shipyard-preview"


class Phase(StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTING = "promoting"
    ABORTING = "aborting"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


ACTIVE_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING, Phase.ABORTING})
_DECIDING = frozenset({Phase.PROMOTING, Phase.ABORTING})


@dataclass(frozen=True, slots=True)
class SegmentRule:
    kind: str  # "header" | "cookie" | "path"
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
class StepSpec:
    kind: str  # set_weight | pause | analysis | approval | segment | mirror
    weight: float | None = None
    duration_s: float | None = None  # pause: None = until promoted; analysis: the window
    checks: tuple[CheckSpec, ...] = ()
    interval_s: float | None = None
    required: int = 1
    approvers: tuple[str, ...] = ()
    segment: SegmentRule | None = None
    mirror: float | None = None
    label: str = ""  # why the step exists when the engine added it (blue-green preview, switch)

    def describe(self) -> str:
        if self.label:
            return self.label
        if self.kind == "set_weight":
            return f"set weight {self.weight:g}%"
        if self.kind == "pause":
            return (
                "pause until promoted" if self.duration_s is None else f"pause {self.duration_s:g}s"
            )
        if self.kind == "analysis":
            return "analysis: " + ", ".join(c.name for c in self.checks)
        if self.kind == "approval":
            return f"approval by {self.required}"
        if self.kind == "segment" and self.segment is not None:
            return f"segment: {self.segment.describe()}"
        return f"mirror {self.mirror:g}%"


@dataclass(frozen=True, slots=True)
class PolicySpec:
    name: str
    strategy: str = "canary"  # canary | blue_green
    steps: tuple[StepSpec, ...] = ()
    keep_old_for_s: float = (
        0.0  # blue_green: the old version stays ready this long after the switch
    )
    router: str = "haproxy"  # haproxy: proxy weights; flag: the rollout of ``flag`` moves
    flag: str | None = None

    @property
    def flag_routed(self) -> bool:
        """The cohorts are the flag's on and off users, not two running versions."""
        return self.router == "flag" and self.flag is not None

    @staticmethod
    def blue_green(
        name: str,
        steps: Sequence[StepSpec],
        preview_checks: Sequence[CheckSpec],
        *,
        keep_old_for_s: float,
        auto_switch: bool,
        interval_s: float | None = None,
    ) -> PolicySpec:
        """Blue-green as canary primitives: 0% live traffic, the new colour reachable through a
        preview header, preview checks, the policy's steps, then one switch of 100%."""
        expanded = [
            StepSpec(
                "segment",
                segment=SegmentRule("header", PREVIEW_HEADER),
                label=f"preview: requests with header {PREVIEW_HEADER} go to the new version",
            )
        ]
        if preview_checks:
            expanded.append(
                StepSpec(
                    "analysis",
                    checks=tuple(preview_checks),
                    interval_s=interval_s,
                    label="preview checks",
                )
            )
        expanded.extend(steps)
        if not auto_switch:
            expanded.append(StepSpec("pause", label="waiting for promote to switch all traffic"))
        return PolicySpec(name, "blue_green", tuple(expanded), keep_old_for_s)


@dataclass(frozen=True, slots=True)
class AnalysisRun:
    """The measurements of the current analysis step, kept so a restart re-derives the verdict."""

    started_at: datetime
    last_at: datetime | None = None
    snapshots: tuple[Snapshot, ...] = ()
    queries: Mapping[str, tuple[QueryResult, ...]] = field(default_factory=dict)
    results: tuple[CheckResult, ...] = ()  # the latest evaluation, for status views


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
    pause_reason: str = ""
    reason: str = ""  # why it was promoted or rolled back
    due_at: datetime | None = None  # when the engine should look again; None = wait for a human
    retire_at: datetime | None = None  # blue_green: when the old version is stopped
    old_retired: bool = False
    finished_at: datetime | None = None
    revision: int = 0  # bumped by every save; a save from a stale read is refused
    last_error: str = ""  # why the engine could not act on it last time (cleared by a save)

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES or (
            self.phase is Phase.PROMOTED and not self.old_retired
        )

    @property
    def current_step(self) -> StepSpec | None:
        steps = self.policy.steps
        return steps[self.step] if self.step < len(steps) else None


@dataclass(frozen=True, slots=True)
class Record:
    """One decision and its evidence: what was decided, at which step, by whom, and why."""

    kind: str  # started, weight, segment, mirror, paused, waiting, approved, resumed, analysis,
    # skipped, promoting, promoted, aborting, rolled_back, dry_run
    step: int
    actor: str
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    rollout: Rollout
    records: tuple[Record, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.records)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the engine measured for the current analysis step at ``now``."""

    canary: ArmCounters | None = None
    baseline: ArmCounters | None = None
    queries: Mapping[str, QueryResult] = field(default_factory=dict)  # prometheus check -> value


@dataclass(frozen=True, slots=True)
class RouteIntent:
    stable: str | None
    canary: str | None = None
    weight: float = 0.0
    segment: SegmentRule | None = None
    mirror: float = 0.0


ENGINE = "engine"


def route_of(r: Rollout) -> RouteIntent:
    """The traffic split the rollout wants live now."""
    if r.phase in (Phase.PROMOTING, Phase.PROMOTED):
        return RouteIntent(stable=r.canary)
    if r.phase in (Phase.ABORTING, Phase.ROLLED_BACK):
        return RouteIntent(stable=r.stable)
    return RouteIntent(r.stable, r.canary, r.weight, r.segment, r.mirror)


def flag_percent(r: Rollout) -> float:
    """The share of users a flag-routed rollout wants in the flag's on cohort now.

    Promoting means everyone; aborting is the kill path (0%, the feature dark again)."""
    if r.phase in (Phase.PROMOTING, Phase.PROMOTED):
        return 100.0
    if r.phase in (Phase.ABORTING, Phase.ROLLED_BACK):
        return 0.0
    return r.weight


def start(r: Rollout, now: datetime) -> Decision:
    """A new rollout: a first deployment has nothing to compare with and goes straight to 100%.

    A flag-routed rollout always has something to compare with: the users the flag is off for.
    """
    first = r.stable is None or r.stable == r.canary
    if first and not r.policy.flag_routed:
        nxt = replace(r, phase=Phase.PROMOTING, weight=100.0, due_at=now, reason="first version")
        return Decision(
            nxt,
            (Record("promoting", 0, ENGINE, "nothing serves yet: the new version takes 100%"),),
        )
    nxt = replace(r, step_started_at=now, due_at=now)
    message = f"policy {r.policy.name} ({r.policy.strategy}, {len(r.policy.steps)} steps)"
    if r.policy.flag_routed:
        message += f", moving flag {r.policy.flag}"
    return Decision(nxt, (Record("started", 0, ENGINE, f"rollout started: {message}"),))


@dataclass(frozen=True, slots=True)
class Wants:
    """What the engine must measure before calling decide: router counters, Prometheus checks."""

    counters: bool = False
    queries: tuple[CheckSpec, ...] = ()
    interval_s: float = 60.0  # the measurement interval: a query's {{interval}}


def _analysis_interval(step: StepSpec) -> float:
    if step.interval_s is not None:
        return step.interval_s
    return min((c.interval_s for c in step.checks), default=60.0)


def _analysis_window(step: StepSpec) -> float:
    """Without a duration an analysis runs five intervals (Argo runs one measurement)."""
    return step.duration_s if step.duration_s is not None else 5 * _analysis_interval(step)


def _measurement_due(r: Rollout, now: datetime) -> bool:
    step = r.current_step
    if r.phase is not Phase.PROGRESSING or step is None or step.kind != "analysis":
        return False
    run = r.analysis
    if run is None or run.last_at is None:
        return True
    return now >= run.last_at + timedelta(seconds=_analysis_interval(step))


def wants(r: Rollout, now: datetime) -> Wants:
    if not _measurement_due(r, now):
        return Wants()
    step = r.current_step
    assert step is not None
    return Wants(
        counters=any(c.provider == "router" for c in step.checks),
        queries=tuple(c for c in step.checks if c.provider == "prometheus"),
        interval_s=_analysis_interval(step),
    )


def _advance(r: Rollout, now: datetime) -> Rollout:
    """The next step; a measured analysis goes to ``earlier_analyses`` for views of the rollout."""
    earlier = r.earlier_analyses
    if r.analysis is not None and r.analysis.last_at is not None:
        earlier = (*earlier, (r.step, r.analysis))
    return replace(
        r,
        step=r.step + 1,
        step_started_at=now,
        analysis=None,
        earlier_analyses=earlier,
        approvals=(),
        pause_reason="",
    )


def _finish_steps(r: Rollout, now: datetime, actor: str, why: str) -> Decision:
    nxt = replace(r, phase=Phase.PROMOTING, weight=100.0, due_at=now, pause_reason="", reason=why)
    return Decision(nxt, (Record("promoting", r.step, actor, why),))


def _measure(r: Rollout, step: StepSpec, obs: Observation, now: datetime) -> AnalysisRun:
    run = r.analysis or AnalysisRun(started_at=now)
    at = (now - run.started_at).total_seconds()
    snapshots = run.snapshots
    if obs.canary is not None:
        snapshots = (*snapshots, Snapshot(at, obs.canary, obs.baseline))
    queries = dict(run.queries)
    for name, result in obs.queries.items():
        queries[name] = (*queries.get(name, ()), replace(result, at=at))
    return replace(run, last_at=now, snapshots=snapshots, queries=queries)


def _judge(run: AnalysisRun, step: StepSpec, final: bool) -> tuple[CheckResult, ...]:
    return tuple(
        evaluate(c, run.snapshots, run.queries.get(c.name, ()), final=final) for c in step.checks
    )


def _evidence(results: Sequence[CheckResult], run: AnalysisRun) -> dict[str, Any]:
    return {
        "checks": [x.to_dict() for x in results],
        "window_s": (run.last_at - run.started_at).total_seconds() if run.last_at else 0.0,
    }


def _run_analysis(r: Rollout, step: StepSpec, obs: Observation | None, now: datetime) -> Decision:
    if obs is None or not _measurement_due(r, now):
        run = r.analysis
        if run is None:  # first look: ask the engine to measure right away
            return Decision(replace(r, analysis=AnalysisRun(started_at=now), due_at=now))
        nxt_at = (run.last_at or now) + timedelta(seconds=_analysis_interval(step))
        return Decision(replace(r, due_at=nxt_at))
    run = _measure(r, step, obs, now)
    final = (now - run.started_at).total_seconds() >= _analysis_window(step) - 1e-6
    results = _judge(run, step, final)
    run = replace(run, results=results)
    acting = [x for x in results if not x.dry_run]
    records: list[Record] = []
    shadow_failed = [x for x in results if x.dry_run and x.verdict is Verdict.FAIL]
    # a dry-run failure is recorded once per analysis, when first seen; it never acts
    prior = {
        x.name for x in (r.analysis.results if r.analysis else ()) if x.verdict is Verdict.FAIL
    }
    for x in shadow_failed:
        if x.name not in prior:
            records.append(
                Record(
                    "dry_run",
                    r.step,
                    ENGINE,
                    f"dry-run check {x.name} failed: {x.reason}",
                    {"check": x.to_dict()},
                )
            )
    verdicts = [x.verdict for x in acting]
    evidence = _evidence(results, run)
    failed = [x for x in acting if x.verdict is Verdict.FAIL]
    if failed:
        why = "; ".join(f"{x.name}: {x.reason}" for x in failed)
        nxt = replace(
            r, analysis=run, phase=Phase.ABORTING, due_at=now, reason=f"analysis failed: {why}"
        )
        records.append(Record("aborting", r.step, ENGINE, f"analysis failed: {why}", evidence))
        return Decision(nxt, tuple(records))
    if (acting and all(v is Verdict.PASS for v in verdicts)) or (final and not acting):
        records.append(Record("analysis", r.step, ENGINE, "analysis passed", evidence))
        return Decision(_advance(replace(r, analysis=run), now), tuple(records))  # caller goes on
    if final:  # some check could neither pass nor fail: a human decides
        unsure = [x for x in acting if x.verdict is not Verdict.PASS]
        why = "; ".join(f"{x.name}: {x.reason}" for x in unsure)
        nxt = replace(
            r,
            analysis=run,
            phase=Phase.PAUSED,
            due_at=None,
            pause_reason=f"analysis inconclusive: {why}",
        )
        records.append(Record("paused", r.step, ENGINE, f"analysis inconclusive: {why}", evidence))
        return Decision(nxt, tuple(records))
    nxt_at = now + timedelta(seconds=_analysis_interval(step))
    return Decision(replace(r, analysis=run, due_at=nxt_at), tuple(records))


def _continue(
    r: Rollout, now: datetime, obs: Observation | None, records: list[Record]
) -> Decision:
    """Run steps from ``r.step`` until one has to wait."""
    steps = r.policy.steps
    while r.phase is Phase.PROGRESSING:
        if r.step >= len(steps):
            done = _finish_steps(r, now, ENGINE, "all steps passed")
            return Decision(done.rollout, (*records, *done.records))
        step = steps[r.step]
        started = r.step_started_at or now
        if step.kind == "set_weight" and step.weight is not None:
            records.append(
                Record(
                    "weight",
                    r.step,
                    ENGINE,
                    f"weight set to {step.weight:g}%",
                    {"weight": step.weight, "from": r.weight},
                )
            )
            r = _advance(replace(r, weight=step.weight), now)
        elif step.kind == "segment" and step.segment is not None:
            records.append(
                Record(
                    "segment", r.step, ENGINE, step.describe(), {"segment": step.segment.describe()}
                )
            )
            r = _advance(replace(r, segment=step.segment), now)
        elif step.kind == "mirror" and step.mirror is not None:
            records.append(
                Record(
                    "mirror",
                    r.step,
                    ENGINE,
                    f"mirroring {step.mirror:g}% of requests",
                    {"mirror": step.mirror},
                )
            )
            r = _advance(replace(r, mirror=step.mirror), now)
        elif step.kind == "pause":
            if step.duration_s is None:
                why = step.label or "paused until promoted"
                records.append(Record("paused", r.step, ENGINE, why))
                return Decision(
                    replace(r, phase=Phase.PAUSED, pause_reason=why, due_at=None), tuple(records)
                )
            until = started + timedelta(seconds=step.duration_s)
            if now < until:
                return Decision(replace(r, due_at=until), tuple(records))
            r = _advance(r, now)
        elif step.kind == "approval":
            if len(r.approvals) >= step.required:
                r = _advance(r, now)
                continue
            why = f"waiting for {step.required - len(r.approvals)} approval(s)"
            records.append(
                Record(
                    "waiting",
                    r.step,
                    ENGINE,
                    why,
                    {"approvers": list(step.approvers), "required": step.required},
                )
            )
            return Decision(
                replace(r, phase=Phase.PAUSED, pause_reason=why, due_at=None), tuple(records)
            )
        elif step.kind == "analysis":
            d = _run_analysis(r, step, obs, now)
            obs = None  # one observation is one measurement
            records.extend(d.records)
            if d.rollout.step == r.step or d.rollout.phase is not Phase.PROGRESSING:
                return Decision(d.rollout, tuple(records))
            r = d.rollout
        else:  # an unknown kind cannot come from a validated policy
            r = _advance(r, now)
    return Decision(r, tuple(records))


def decide(r: Rollout, now: datetime, obs: Observation | None = None) -> Decision:
    """Run the policy as far as it can go at ``now``; ``obs`` answers ``wants``."""
    if r.phase is not Phase.PROGRESSING:
        return Decision(r)
    return _continue(r, now, obs, [])


def finish(r: Rollout, now: datetime) -> Decision:
    """The promoting/aborting effects are live (route applied, the loser retired): record it."""
    if r.phase is Phase.PROMOTING:
        keep = r.policy.keep_old_for_s if r.stable else 0.0
        retire_at = now + timedelta(seconds=keep) if keep > 0 else None
        nxt = replace(
            r,
            phase=Phase.PROMOTED,
            weight=100.0,
            due_at=retire_at,
            retire_at=retire_at,
            old_retired=retire_at is None,
            finished_at=now,
        )
        message = f"{r.canary} serves 100% of traffic"
        if r.policy.flag_routed:
            message = f"flag {r.policy.flag} on for 100% of users of {r.canary}"
        if retire_at is not None:
            message += f"; {r.stable} stays ready until {retire_at.isoformat(timespec='seconds')}"
        return Decision(nxt, (Record("promoted", r.step, ENGINE, message, {"reason": r.reason}),))
    if r.phase is Phase.ABORTING:
        nxt = replace(
            r, phase=Phase.ROLLED_BACK, weight=0.0, due_at=None, finished_at=now, old_retired=True
        )
        message = f"{r.stable} serves 100% of traffic again; {r.canary} stopped"
        if r.policy.flag_routed:  # the new code stays deployed; only its feature goes dark
            message = f"flag {r.policy.flag} off for everyone; {r.canary} keeps running dark"
        return Decision(
            nxt, (Record("rolled_back", r.step, ENGINE, message, {"reason": r.reason}),)
        )
    if r.phase is Phase.PROMOTED and not r.old_retired:
        nxt = replace(r, old_retired=True, due_at=None)
        return Decision(nxt, (Record("retired", r.step, ENGINE, f"{r.stable} stopped"),))
    return Decision(r)


# --- human commands --------------------------------------------------------------------------


def _require_active(r: Rollout, verb: str) -> None:
    if r.phase not in (Phase.PROGRESSING, Phase.PAUSED):
        raise ConflictError(
            f"cannot {verb} the rollout of {r.canary} in {r.environment}: it is {r.phase.value}",
            code=ErrorCode.INVALID_TRANSITION,
            details={"phase": r.phase.value},
        )


def promote(
    r: Rollout, *, user: str, roles: Sequence[str], now: datetime, full: bool = False
) -> Decision:
    """Skip the current step (a pause, an analysis, an inconclusive verdict), or all with ``full``.

    On an approval step it is an approval: from an approver (or admin) who did not ask for the
    deployment, counted once per person.
    """
    _require_active(r, "promote")
    if full:
        for gate in r.policy.steps[r.step :]:  # skipping an approval needs the right to give it
            if gate.kind == "approval":
                _check_approver(r, gate, user=user, roles=roles)
        return _finish_steps(r, now, user, f"promoted to 100% by {user}")
    step = r.current_step
    if step is None:
        return _finish_steps(r, now, user, f"promoted by {user}")
    if step.kind == "approval":
        return _approve(r, step, user=user, roles=roles, now=now)
    rec = Record(
        "skipped", r.step, user, f"{user} promoted past step {r.step + 1}: {step.describe()}"
    )
    d = _continue(replace(_advance(r, now), phase=Phase.PROGRESSING), now, None, [rec])
    return d


def _approve(
    r: Rollout, step: StepSpec, *, user: str, roles: Sequence[str], now: datetime
) -> Decision:
    _check_approver(r, step, user=user, roles=roles)
    if user.casefold() in {a.casefold() for a in r.approvals}:
        raise ConflictError(f"{user} already approved this step", code=ErrorCode.INVALID_TRANSITION)
    approved = replace(r, approvals=(*r.approvals, user))
    rec = Record(
        "approved", r.step, user, f"approved by {user} ({len(approved.approvals)}/{step.required})"
    )
    return _continue(replace(approved, phase=Phase.PROGRESSING), now, None, [rec])


def _check_approver(r: Rollout, step: StepSpec, *, user: str, roles: Sequence[str]) -> None:
    role_names = {str(x) for x in roles}
    allowed = {Role.APPROVER.value, Role.ADMIN.value} & role_names
    named = (
        not step.approvers
        or user in step.approvers
        or any(a.startswith("role:") and a[5:] in role_names for a in step.approvers)
    )
    if not allowed or not named:
        raise PermissionDenied(
            f"{user} may not approve this rollout step",
            details={"approvers": list(step.approvers)},
        )
    if user.strip().casefold() == r.requested_by.strip().casefold():
        raise RefusedError(
            f"{user} asked for this deployment and may not approve its rollout",
            code=ErrorCode.SEPARATION_OF_DUTIES,
            hint="a second person with the approver role must approve",
        )


def pause(r: Rollout, *, user: str, now: datetime) -> Decision:
    if r.phase is not Phase.PROGRESSING:
        _require_active(r, "pause")
        raise ConflictError("the rollout is already paused", code=ErrorCode.INVALID_TRANSITION)
    why = f"paused by {user}"
    nxt = replace(r, phase=Phase.PAUSED, pause_reason=why, due_at=None)
    return Decision(nxt, (Record("paused", r.step, user, why),))


def resumable(r: Rollout) -> bool:
    """A paused rollout that ``resume`` continues: a human's pause, or an analysis to run again.

    A pause step or an approval step is gone past with ``promote`` instead."""
    if r.phase is not Phase.PAUSED:
        return False
    step = r.current_step
    return (
        step is None
        or step.kind not in ("pause", "approval")
        or r.pause_reason.startswith("paused by")
    )


def resume(r: Rollout, *, user: str, now: datetime) -> Decision:
    """Continue after a manual pause, or re-run an inconclusive analysis from scratch."""
    if r.phase is not Phase.PAUSED:
        _require_active(r, "resume")
        raise ConflictError("the rollout is not paused", code=ErrorCode.INVALID_TRANSITION)
    step = r.current_step
    if not resumable(r):
        assert step is not None
        raise RefusedError(
            f"the rollout waits at step {r.step + 1} ({step.describe()})",
            code=ErrorCode.INVALID_TRANSITION,
            hint="use `shipyard rollout promote` to go past it",
        )
    rerun = step is not None and step.kind == "analysis" and r.pause_reason.startswith("analysis")
    nxt = replace(
        r,
        phase=Phase.PROGRESSING,
        pause_reason="",
        due_at=now,
        analysis=None if rerun else r.analysis,
        step_started_at=now if rerun else r.step_started_at,
    )
    why = f"resumed by {user}" + (" (analysis starts again)" if rerun else "")
    return _continue(nxt, now, None, [Record("resumed", r.step, user, why)])


def abort(r: Rollout, *, user: str, now: datetime, reason: str = "") -> Decision:
    """All traffic back to the stable version."""
    if r.phase in _DECIDING or r.phase not in ACTIVE_PHASES:
        raise ConflictError(
            f"cannot abort the rollout of {r.canary} in {r.environment}: it is {r.phase.value}",
            code=ErrorCode.INVALID_TRANSITION,
            details={"phase": r.phase.value},
        )
    if r.stable is None and not r.policy.flag_routed:
        raise RefusedError(
            "nothing to go back to: this is the first version in the environment",
            code=ErrorCode.INVALID_TRANSITION,
        )
    why = f"aborted by {user}" + (f": {reason}" if reason else "")
    nxt = replace(r, phase=Phase.ABORTING, due_at=now, reason=why)
    return Decision(nxt, (Record("aborting", r.step, user, why),))
