"""Series to SVG coordinates: scaling, staircases, gaps, ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shipyard.web.charts import HEIGHT, LEFT, TOP, WIDTH, Series, elapsed, line_chart, nice_ceiling

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pct(v: float) -> str:
    return f"{v:g}%"


def test_nice_ceiling_rounds_up_to_1_2_2_5_5_times_a_power_of_ten() -> None:
    assert [nice_ceiling(v) for v in (0.003, 0.011, 0.02, 0.021, 0.3, 3.1, 7, 100)] == [
        0.005,
        0.02,
        0.02,
        0.025,
        0.5,
        5.0,
        10.0,
        100.0,
    ]
    assert nice_ceiling(0) == 1.0 and nice_ceiling(float("nan")) == 1.0


def test_elapsed_labels() -> None:
    assert [elapsed(s) for s in (0, 45, 60, 90, 3600, 3900)] == [
        "0 s",
        "45 s",
        "1 min",
        "1 min 30 s",
        "1 h",
        "1 h 5 min",
    ]


def test_points_scale_to_the_plot_area() -> None:
    chart = line_chart(
        [Series("canary", "canary", [(at(0), 0.0), (at(50), 50.0), (at(100), 100.0)])],
        T0,
        at(100),
        fmt=pct,
        y_max=100.0,
    )
    [line] = chart.lines
    bottom, right = TOP + HEIGHT, WIDTH
    mid_x, mid_y = (LEFT + right) / 2, TOP + HEIGHT / 2
    assert line.segments == (
        f"{LEFT:.1f},{bottom:.1f} {mid_x:.1f},{mid_y:.1f} {right:.1f},{TOP:.1f}",
    )
    assert [d.title for d in line.dots] == [
        "canary: 0% at +0 s",
        "canary: 50% at +50 s",
        "canary: 100% at +1 min 40 s",
    ]
    assert line.last == "100%"
    assert [t.label for t in chart.y_ticks] == ["0%", "50%", "100%"]
    assert [t.label for t in chart.x_ticks] == ["0 s", "30 s", "1 min", "1 min 30 s"]
    assert not chart.empty


def test_a_step_series_holds_each_value_until_the_next_and_until_the_end() -> None:
    chart = line_chart(
        [Series("weight", "w", [(at(0), 0.0), (at(10), 20.0)], step=True)],
        T0,
        at(20),
        fmt=pct,
        y_max=100.0,
    )
    [segment] = chart.lines[0].segments
    ys = [float(p.split(",")[1]) for p in segment.split()]
    xs = [float(p.split(",")[0]) for p in segment.split()]
    assert len(ys) == 4  # (0, 0) (10, 0) (10, 20) (20, 20)
    assert ys[0] == ys[1] and ys[2] == ys[3] and ys[2] < ys[1]
    assert xs[1] == xs[2] and xs[3] == WIDTH
    assert len(chart.lines[0].dots) == 2  # dots only where a value was decided


def test_a_missing_value_breaks_the_line() -> None:
    points = [(at(0), 1.0), (at(10), 2.0), (at(20), None), (at(30), 2.0), (at(40), 1.0)]
    chart = line_chart([Series("stable", "s", points)], T0, at(40), fmt=str)
    assert len(chart.lines[0].segments) == 2
    assert len(chart.lines[0].dots) == 4
    assert chart.y_ticks[-1].label == "2.0"  # the scale is a round number above the data


def test_values_outside_the_range_are_clamped_and_nothing_is_empty() -> None:
    chart = line_chart([Series("canary", "c", [(at(-5), 500.0)])], T0, at(10), fmt=pct, y_max=100)
    [dot] = chart.lines[0].dots
    assert (dot.x, dot.y) == (LEFT, TOP)
    nothing = line_chart([Series("canary", "c", [(at(1), None)])], T0, at(10), fmt=pct)
    assert nothing.empty and nothing.lines[0].last == ""
    instant = line_chart([Series("canary", "c", [(T0, 1.0)])], T0, T0, fmt=pct)
    assert [t.label for t in instant.x_ticks] == ["0 s"]


def test_a_log_axis_gives_every_decade_a_tick_and_zero_its_own_band() -> None:
    share = Series("weight", "share", [(at(0), 0.0), (at(10), 0.1), (at(20), 1.0)], step=True)
    chart = line_chart([share], T0, at(40), fmt=pct, y_max=100.0, log=True)
    ticks = {t.label: t.at for t in chart.y_ticks}
    assert list(ticks) == ["0%", "0.1%", "1%", "10%", "100%"]
    assert ticks["0%"] == TOP + HEIGHT and ticks["100%"] == TOP
    gaps = [round(ticks[a] - ticks[b], 6) for a, b in (("0.1%", "1%"), ("1%", "10%"))]
    assert gaps[0] == gaps[1] > 0  # one decade, one height: 0.1% and 1% are apart
    assert ticks["0%"] - ticks["0.1%"] > 10  # 0 is below the lowest decade, not on it
    dots = [d.title.split(" at ")[0] for d in chart.lines[0].dots]
    assert dots == ["share: 0%", "share: 0.1%", "share: 1%"]
