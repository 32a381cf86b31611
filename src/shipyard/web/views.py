"""What the pages show, assembled from what the services return: pure functions, no I/O.

The environment matrix has one column per environment (in promotion order) and one row per recent
candidate; a cell holds the latest deployment of that candidate there and whether it serves the
environment now. The history chart is a few bars of deployments per day, drawn as inline SVG.
The rollout page is the policy's steps, every decision with its evidence, the commands the viewer
may give, and charts over the rollout's time (web/charts.py does the coordinates). A flag-routed
rollout (``router: flag``) has no proxy: its share is a flag's percentage of users, its arms are
the flag's on and off cohorts, and its live table is what the app's SDK reported per variant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shipyard.domain.deployments import Deployment, DeploymentState
from shipyard.domain.releases import Candidate, Release
from shipyard.domain.rollouts import Phase, Rollout, flag_percent, resumable
from shipyard.services.deployments import Placement
from shipyard.services.rollout_watch import (
    Cohort,
    Counters,
    RolloutRecordEntry,
    RolloutWatch,
    VersionSample,
)
from shipyard.web.charts import LineChart, Series, line_chart, nice_ceiling

MATRIX_ROWS = 12  # recent candidates shown; live and waiting ones are always shown
LIVE_REFRESH_MS = 2000  # the engine acts on an active rollout: follow it closely
IDLE_REFRESH_MS = 5000  # nothing runs: only watch for the next rollout to start


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
    share: str  # the headline: the new version's weight, or the flag's percentage of users
    p95: dict[str, str]  # per candidate: p95 latency of its last measured interval, or "—"
    cohorts: tuple[Cohort, ...] = ()  # a running flag-routed rollout's variants
    pinned: bool = False  # the page of one deployment's rollout, not the environment's latest

    @property
    def flag(self) -> str | None:
        """The flag a ``router: flag`` rollout moves; None when a proxy routes."""
        return self.rollout.policy.flag if self.rollout.policy.flag_routed else None

    @property
    def refresh_ms(self) -> int:
        return refresh_ms(self.rollout, pinned=self.pinned)

    @property
    def approval_step(self) -> bool:
        step = self.rollout.current_step
        return step is not None and step.kind == "approval"


def refresh_ms(r: Rollout | None, *, pinned: bool) -> int:
    """How often the panel re-fetches itself (0: never).

    Fast while the engine acts on the rollout. After the end the environment's page keeps a slow
    refresh, because its panel shows the latest rollout and the next one should appear without a
    reload; a deployment's page is pinned to that rollout, which no longer changes, so it stops.
    """
    if r is not None and r.active:
        return LIVE_REFRESH_MS
    return 0 if pinned else IDLE_REFRESH_MS


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
    if r.stable is not None or r.policy.flag_routed:  # a flag's off users are the fallback
        actions.append("abort")
    return tuple(actions)


def share_text(v: float) -> str:
    """A share of traffic or users, exact to the 4 decimals a policy allows: 0.1%, 0.0001%, 12.5%.

    Never rounded to 0% and never in exponent notation (``%g`` writes 0.0001 as 1e-04)."""
    return f"{v:.4f}".rstrip("0").rstrip(".") + "%"


def _ratio(v: float) -> str:
    return f"{v * 100:.2f}%"


def _ms(v: float) -> str:
    return f"{v * 1000:.0f} ms" if v >= 0.01 else f"{v * 1000:.1f} ms"


def _arm_labels(r: Rollout) -> tuple[str, str | None]:
    """(canary, stable) legend labels; a flag-routed rollout compares cohorts, not versions."""
    if r.policy.flag_routed:
        return f"flag {r.policy.flag} on", f"flag {r.policy.flag} off"
    return f"canary {r.canary}", f"stable {r.stable}" if r.stable is not None else None


def rollout_charts(w: RolloutWatch) -> tuple[LineChart, LineChart, LineChart]:
    """Share over time, and error ratio and p95 latency per arm per measurement.

    A flag's share goes through sub-percent steps (0.1%, 1%) before 10% and 100%: its chart has a
    log axis, on which each of them is a visible step; a proxy's weights stay on a linear one."""
    r = w.rollout
    start, end = r.created_at, r.finished_at or w.now
    flag = r.policy.flag_routed
    label = f"flag {r.policy.flag} share" if flag else f"{r.canary} weight"
    weight = Series("weight", label, [(p.at, p.weight) for p in w.weights], True)
    ms = w.measurements
    canary_label, stable_label = _arm_labels(r)

    def per_arm(pick: Callable[[VersionSample], float | None]) -> list[Series]:
        out = []
        if stable_label is not None:
            stable = [(m.at, pick(m.stable) if m.stable else None) for m in ms]
            out.append(Series("stable", stable_label, stable))
        out.append(Series("canary", canary_label, [(m.at, pick(m.canary)) for m in ms]))
        return out

    errors = per_arm(lambda s: s.error_ratio)
    latency = per_arm(lambda s: s.latency_p95_s)
    worst_error = max((v for s in errors for _, v in s.points if v is not None), default=0.0)
    return (
        line_chart([weight], start, end, fmt=share_text, y_max=100.0, log=flag),
        line_chart(errors, start, end, fmt=_ratio, y_max=nice_ceiling(max(worst_error, 0.01))),
        line_chart(latency, start, end, fmt=_ms),
    )


def last_p95(w: RolloutWatch) -> dict[str, str]:
    """Per version, the p95 latency of the latest interval that measured it, as the chart draws.

    The router's own average is in whole milliseconds and reads "0 ms" for a fast service; the
    histogram's p95 over the same intervals the checks judge is what the page can stand behind.
    """
    r = w.rollout
    out = {r.canary: "—"}
    if r.stable is not None:
        out[r.stable] = "—"
    for m in w.measurements:
        arms = ((r.canary, m.canary), (r.stable, m.stable))
        for version, sample in arms:
            if version is not None and sample is not None and sample.latency_p95_s is not None:
                out[version] = _ms(sample.latency_p95_s)
    return out


def rollout_page(w: RolloutWatch, *, may_steer: bool, pinned: bool = False) -> RolloutPage:
    r = w.rollout
    weight, errors, latency = rollout_charts(w)
    results = r.analysis.results if r.analysis else ()
    share = flag_percent(r) if r.policy.flag_routed else r.weight
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
        share=share_text(share),
        p95=last_p95(w),
        cohorts=tuple(w.cohorts),
        pinned=pinned,
    )
