"""What the pages show, assembled from what the services return: pure functions, no I/O.

The environment matrix has one column per environment (in promotion order) and one row per recent
candidate; a cell holds the latest deployment of that candidate there and whether it serves the
environment now. The history chart is a few bars of deployments per day, drawn as inline SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shipyard.domain.deployments import Deployment, DeploymentState
from shipyard.domain.releases import Candidate, Release
from shipyard.services.deployments import Placement

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
