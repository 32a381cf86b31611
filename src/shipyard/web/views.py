"""What the pages show, assembled from what the services return: pure functions, no I/O.

The environment matrix has one column per environment (in promotion order) and one row per recent
candidate; a cell holds the latest deployment of that candidate there and whether it serves the
environment now. The history chart is a few bars of deployments per day, drawn as inline SVG.
The rollout page is the policy's steps, every decision with its evidence, the commands the viewer
may give, and three charts over the rollout's time (web/charts.py does the coordinates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shipyard.domain.deployments import Deployment, DeploymentState
from shipyard.domain.releases import Candidate, Release
from shipyard.domain.rollouts import Phase, Rollout, resumable
from shipyard.services.deployments import Placement
from shipyard.services.rollout_watch import (
    Counters,
    RolloutRecordEntry,
    RolloutWatch,
    VersionSample,
)
from shipyard.web.charts import LineChart, Series, line_chart, nice_ceiling

MATRIX_ROWS = 12  # recent candidates shown; live and waiting ones are always shown


@dataclass(frozen=True)
class Cell:
    deployment: Deployment | None  # the latest deployment of the candidate into the environment
    live: bool  # the candidate serves the environment now

    @property
    def waiting(self) -> bool:
        d = self.deployment
        return d is not None and d.state in (
            DeploymentState.PENDING,
            DeploymentState.AWAITING_APPROVAL,
        )


@dataclass(frozen=True)
class Row:
    version: str
    candidate: Candidate
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Matrix:
    environments: tuple[Placement, ...]
    rows: tuple[Row, ...]
    hidden: int  # older candidates left out

    @property
    def waiting(self) -> tuple[Deployment, ...]:
        """Deployments waiting for a decision (approval or gates), oldest first."""
        found = [
            d
            for p in self.environments
            for d in p.pending
            if d.state is not DeploymentState.RUNNING
        ]
        return tuple(sorted(found, key=lambda d: d.id))


def build_matrix(
    placements: Sequence[Placement],
    releases: Sequence[tuple[Release, Sequence[Candidate]]],
    history: Sequence[Deployment],
    *,
    limit: int = MATRIX_ROWS,
) -> Matrix:
    """Rows newest candidate first; ``history`` is newest first, as the services return it."""
    latest: dict[tuple[str, str], Deployment] = {}
    for d in history:
        latest.setdefault((d.candidate, d.environment), d)
    live = {(p.candidate, p.environment) for p in placements if p.candidate}
    active = {d.candidate for d in history if d.active}
    everything = sorted(
        ((r.version, c) for r, cs in releases for c in cs),
        key=lambda pair: (pair[1].created_at, pair[1].id),
        reverse=True,
    )
    rows: list[Row] = []
    for n, (version, c) in enumerate(everything):
        serving = any((c.name, p.environment) in live for p in placements)
        if n >= limit and not serving and c.name not in active:
            continue
        cells = tuple(
            Cell(latest.get((c.name, p.environment)), (c.name, p.environment) in live)
            for p in placements
        )
        rows.append(Row(version, c, cells))
    return Matrix(tuple(placements), tuple(rows), len(everything) - len(rows))


@dataclass(frozen=True)
class Bar:
    day: date
    x: float
    succeeded: int
    failed: int
    other: int  # canceled, rolled back, still running or waiting

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.other


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    bar_width: float
    peak: int

    def y(self, count: int) -> float:
        """Pixel height of ``count`` deployments (the tallest day fills the chart)."""
        return (self.height - 16) * count / self.peak if self.peak else 0.0


def daily_chart(
    history: Sequence[Deployment], now: datetime, *, days: int = 14, width: int = 560
) -> Chart:
    """Deployments requested per day over the last ``days`` days, split by how they ended."""
    today = now.date()
    first = today - timedelta(days=days - 1)
    counts: dict[date, list[int]] = {first + timedelta(days=i): [0, 0, 0] for i in range(days)}
    for d in history:
        day = d.requested_at.astimezone(now.tzinfo).date()
        if day not in counts:
            continue
        slot = {DeploymentState.SUCCEEDED: 0, DeploymentState.FAILED: 1}.get(d.state, 2)
        counts[day][slot] += 1
    step = width / days
    bars = tuple(Bar(day, i * step, *counts[day]) for i, day in enumerate(sorted(counts)))
    peak = max((b.total for b in bars), default=0)
    return Chart(bars, width, 120, step * 0.7, peak)


# ---- the rollout page ---------------------------------------------------------------------------

_DECIDED = {"promoted": "ok", "analysis": "ok", "approved": "ok", "rolled_back": "bad"}
_TONES = {**_DECIDED, "aborting": "bad", "dry_run": "bad", "paused": "wait", "waiting": "wait"}


@dataclass(frozen=True)
class StepView:
    number: int  # 1-based, as the CLI counts
    kind: str
    description: str
    state: str  # done | current | pending | failed (the step a rollback stopped at)


@dataclass(frozen=True)
class CheckView:
    name: str
    verdict: str
    reason: str
    dry_run: bool
    value: float | None
    baseline: float | None
    evidence: dict[str, Any]


@dataclass(frozen=True)
class RecordView:
    at: datetime
    kind: str
    tone: str  # ok | bad | wait | "" (a css class)
    step: int  # 1-based
    step_description: str
    actor: str
    message: str
    checks: tuple[CheckView, ...]
    rest: dict[str, Any]  # the evidence besides the checks


@dataclass(frozen=True)
class RolloutPage:
    rollout: Rollout
    steps: tuple[StepView, ...]
    records: tuple[RecordView, ...]  # newest first
    checks: tuple[CheckView, ...]  # the latest evaluation of the current (or last) analysis
    actions: tuple[str, ...]  # pause | resume | promote | promote-full | abort, for this viewer
    weight_chart: LineChart
    error_chart: LineChart
    latency_chart: LineChart
    live: dict[str, Counters]
    url: str | None
    now: datetime

    @property
    def refresh_ms(self) -> int:
        """Refresh while the engine still acts on it; a finished rollout no longer changes."""
        return 2000 if self.rollout.active else 0

    @property
    def approval_step(self) -> bool:
        step = self.rollout.current_step
        return step is not None and step.kind == "approval"


def step_views(r: Rollout) -> tuple[StepView, ...]:
    """Each policy step done, current or pending; a promoted rollout did them all."""
    out = []
    for i, step in enumerate(r.policy.steps):
        if r.phase in (Phase.PROMOTING, Phase.PROMOTED) or i < r.step:
            state = "done"
        elif i == r.step:
            state = "failed" if r.phase in (Phase.ABORTING, Phase.ROLLED_BACK) else "current"
        else:
            state = "pending"
        out.append(StepView(i + 1, step.kind, step.describe(), state))
    return tuple(out)


def _check_view(raw: Mapping[str, Any]) -> CheckView:
    def num(key: str) -> float | None:
        v = raw.get(key)
        return float(v) if isinstance(v, int | float) else None

    return CheckView(
        name=str(raw.get("name", "")),
        verdict=str(raw.get("verdict", "")),
        reason=str(raw.get("reason", "")),
        dry_run=bool(raw.get("dry_run", False)),
        value=num("value"),
        baseline=num("baseline"),
        evidence=dict(raw.get("evidence") or {}),
    )


def record_views(r: Rollout, entries: Sequence[RolloutRecordEntry]) -> tuple[RecordView, ...]:
    """Every decision with its evidence, newest first, split as ``shipyard rollout explain`` does."""
    steps = r.policy.steps
    out = []
    for e in reversed(entries):
        rec = e.record
        evidence = dict(rec.evidence)
        checks = evidence.pop("checks", [])
        out.append(
            RecordView(
                at=e.at,
                kind=rec.kind,
                tone=_TONES.get(rec.kind, ""),
                step=rec.step + 1,
                step_description=steps[rec.step].describe() if rec.step < len(steps) else "",
                actor=rec.actor,
                message=rec.message,
                checks=tuple(_check_view(c) for c in checks if isinstance(c, Mapping)),
                rest=evidence,
            )
        )
    return tuple(out)


def steering(r: Rollout, may_steer: bool) -> tuple[str, ...]:
    """The commands that apply to the rollout now; none for a viewer or a decided rollout."""
    if not may_steer or r.phase not in (Phase.PROGRESSING, Phase.PAUSED):
        return ()
    actions = ["pause"] if r.phase is Phase.PROGRESSING else []
    if resumable(r):
        actions.append("resume")
    actions += ["promote", "promote-full"]
    if r.stable is not None:
        actions.append("abort")
    return tuple(actions)


def _percent(v: float) -> str:
    return f"{v:g}%"


def _ratio(v: float) -> str:
    return f"{v * 100:.2f}%"


def _ms(v: float) -> str:
    return f"{v * 1000:.0f} ms" if v >= 0.01 else f"{v * 1000:.1f} ms"


def rollout_charts(w: RolloutWatch) -> tuple[LineChart, LineChart, LineChart]:
    """Weight over time, and error ratio and p95 latency per version per measurement."""
    r = w.rollout
    start, end = r.created_at, r.finished_at or w.now
    weight = Series("weight", f"{r.canary} weight", [(p.at, p.weight) for p in w.weights], True)
    ms = w.measurements

    def per_version(pick: Callable[[VersionSample], float | None]) -> list[Series]:
        out = []
        if r.stable is not None:
            stable = [(m.at, pick(m.stable) if m.stable else None) for m in ms]
            out.append(Series("stable", f"stable {r.stable}", stable))
        out.append(Series("canary", f"canary {r.canary}", [(m.at, pick(m.canary)) for m in ms]))
        return out

    errors = per_version(lambda s: s.error_ratio)
    latency = per_version(lambda s: s.latency_p95_s)
    worst_error = max((v for s in errors for _, v in s.points if v is not None), default=0.0)
    return (
        line_chart([weight], start, end, fmt=_percent, y_max=100.0),
        line_chart(errors, start, end, fmt=_ratio, y_max=nice_ceiling(max(worst_error, 0.01))),
        line_chart(latency, start, end, fmt=_ms),
    )


def rollout_page(w: RolloutWatch, *, may_steer: bool) -> RolloutPage:
    r = w.rollout
    weight, errors, latency = rollout_charts(w)
    results = r.analysis.results if r.analysis else ()
    return RolloutPage(
        rollout=r,
        steps=step_views(r),
        records=record_views(r, w.records),
        checks=tuple(_check_view(x.to_dict()) for x in results),
        actions=steering(r, may_steer),
        weight_chart=weight,
        error_chart=errors,
        latency_chart=latency,
        live=dict(w.live),
        url=w.url,
        now=w.now,
    )
