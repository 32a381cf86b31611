"""Time series to inline SVG coordinates: pure arithmetic, no I/O, no template logic.

The rollout page draws its charts on the server so that they update through the same partial
refresh as the rest of the page, with no script library and nothing inline for the CSP to allow.
A chart is a few polylines over a shared time axis (the rollout's start to its end, or now); a
missing value (no traffic in that interval) breaks the line instead of being drawn as zero.

A share that climbs from 0.1% to 100% is a flat line on a linear axis until the last steps, so
such a chart can ask for a log axis: one tick per decade from the smallest value drawn, and a
separate band at the bottom for exactly 0 (which no log axis has), labelled 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Dot", "Line", "LineChart", "Series", "Tick", "elapsed", "line_chart", "nice_ceiling"]

WIDTH = 380  # about the width a chart gets on the page, so 10px labels stay readable
HEIGHT = 120
LEFT = 50  # room for the y labels
BOTTOM = 18  # room for the x labels
TOP = 6
ZERO_BAND = 0.18  # the share of a log axis's height below its lowest decade: where 0 is drawn


@dataclass(frozen=True, slots=True)
class Series:
    """One named line: ``points`` oldest first; ``step`` holds each value until the next one."""

    key: str  # css class: canary, stable, weight
    label: str
    points: Sequence[tuple[datetime, float | None]]
    step: bool = False


@dataclass(frozen=True, slots=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True, slots=True)
class Line:
    key: str
    label: str
    segments: tuple[str, ...]  # SVG polyline ``points`` attributes, one per unbroken run
    dots: tuple[Dot, ...]
    last: str  # the latest value, formatted, for the legend ("" when none)


@dataclass(frozen=True, slots=True)
class Tick:
    at: float  # pixel position along its axis
    label: str


@dataclass(frozen=True, slots=True)
class LineChart:
    width: int
    height: int  # the plot area; the SVG is BOTTOM taller for the x labels
    left: int
    top: int
    lines: tuple[Line, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]

    @property
    def empty(self) -> bool:
        return not any(line.dots or line.segments for line in self.lines)

    @property
    def right(self) -> int:
        return self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (> 0)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= m * power * (1 + 1e-9):
            return m * power
    return 10.0 * power


def elapsed(seconds: float) -> str:
    """Seconds since the start as an axis label: 0 s, 45 s, 2 min, 1 min 30 s, 1 h 5 min."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, rest = divmod(s, 60)
        return f"{m} min" + (f" {rest} s" if rest else "")
    h, rest = divmod(s // 60, 60)
    return f"{h} h" + (f" {rest} min" if rest else "")


def _x_ticks(span: float, left: int, plot_w: float, count: int = 5) -> tuple[Tick, ...]:
    """About ``count`` ticks at round elapsed times (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10 min...)."""
    if span <= 0:
        return (Tick(left, "0 s"),)
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
    every = next((s for s in steps if span / s <= count), steps[-1])
    ticks = []
    t = 0.0
    while t <= span + 1e-9:
        ticks.append(Tick(left + plot_w * t / span, elapsed(t)))
        t += every
    return tuple(ticks)


def _log_floor(values: Sequence[float], top_value: float) -> float:
    """The decade at or below the smallest positive value, so nothing drawn is clipped."""
    smallest = min((v for v in values if v > 0), default=top_value)
    return min(10.0 ** math.floor(math.log10(smallest)), top_value / 10)


def _linear_axis(top_value: float, height: int) -> Callable[[float], float]:
    def y(value: float) -> float:
        return TOP + height - height * min(max(value / top_value, 0.0), 1.0)

    return y


def _log_axis(low: float, top_value: float, height: int) -> Callable[[float], float]:
    """Decades from ``low`` to ``top_value`` above a band for 0."""
    band = height * ZERO_BAND
    decades = math.log10(top_value) - math.log10(low)

    def y(value: float) -> float:
        if value <= 0:
            return float(TOP + height)
        f = (math.log10(min(max(value, low), top_value)) - math.log10(low)) / decades
        return TOP + height - band - (height - band) * f

    return y


def _y_axis(
    values: Sequence[float], top_value: float, height: int, log: bool, fmt: Callable[[float], str]
) -> tuple[Callable[[float], float], tuple[Tick, ...]]:
    """The value-to-pixel map and its ticks: 0, half, top; or 0 and every decade for ``log``."""
    if not log:
        y = _linear_axis(top_value, height)
        return y, tuple(Tick(y(top_value * f), fmt(top_value * f)) for f in (0.0, 0.5, 1.0))
    low = _log_floor(values, top_value)
    y = _log_axis(low, top_value, height)
    n = round(math.log10(top_value / low))
    decades = [0.0] + [low * 10**i for i in range(n + 1)]
    return y, tuple(Tick(y(v), fmt(v)) for v in decades)


def _expand_steps(
    points: Sequence[tuple[datetime, float | None]], end: datetime
) -> list[tuple[datetime, float | None]]:
    """A staircase: each value holds until the next point, the last one until ``end``."""
    out: list[tuple[datetime, float | None]] = []
    for i, (at, value) in enumerate(points):
        if out and out[-1][1] is not None:
            out.append((at, out[-1][1]))
        out.append((at, value))
        if i == len(points) - 1 and end > at:
            out.append((end, value))
    return out


def line_chart(
    series: Sequence[Series],
    start: datetime,
    end: datetime,
    *,
    fmt: Callable[[float], str],
    y_max: float | None = None,
    log: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> LineChart:
    """Lines over [start, end]; y from 0 to ``y_max`` (default: a round number above the data).

    ``log``: a log axis (see the module docstring); ``y_max`` should then be a power of ten."""
    span = max((end - start).total_seconds(), 0.0)
    plot_w = float(width - LEFT)
    values = [v for s in series for _, v in s.points if v is not None]
    top_value = y_max if y_max is not None else nice_ceiling(max(values, default=0.0))

    def x(at: datetime) -> float:
        t = min(max((at - start).total_seconds(), 0.0), span)
        return LEFT + (plot_w * t / span if span else 0.0)

    y, y_ticks = _y_axis(values, top_value, height, log, fmt)
    lines = []
    for s in series:
        drawn = _expand_steps(s.points, end) if s.step else list(s.points)
        segments: list[str] = []
        run: list[str] = []
        for at, value in drawn:
            if value is None:
                if len(run) > 1:
                    segments.append(" ".join(run))
                run = []
                continue
            run.append(f"{x(at):.1f},{y(value):.1f}")
        if len(run) > 1:
            segments.append(" ".join(run))
        dots = tuple(
            Dot(x(at), y(v), f"{s.label}: {fmt(v)} at +{elapsed((at - start).total_seconds())}")
            for at, v in s.points
            if v is not None
        )
        known = [v for _, v in s.points if v is not None]
        lines.append(Line(s.key, s.label, tuple(segments), dots, fmt(known[-1]) if known else ""))
    return LineChart(width, height, LEFT, TOP, tuple(lines), _x_ticks(span, LEFT, plot_w), y_ticks)
