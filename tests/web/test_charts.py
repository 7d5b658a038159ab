"""The SVG charts as a reader of the page gets them: well-formed, scaled, labelled in words, escaped."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta

import pytest
from markupsafe import Markup

from uptimed.store.stats import DayUptime, Point
from uptimed.web.charts import (
    format_percent,
    nice_ticks,
    response_chart,
    sparkline,
    uptime_bars,
)

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def parse(chart: Markup) -> ET.Element:
    assert isinstance(chart, Markup)
    return ET.fromstring(str(chart))  # raises on anything that is not well-formed XML


def all_of(svg: ET.Element, tag: str, css: str | None = None) -> list[ET.Element]:
    found = svg.iter(SVG + tag)
    return [e for e in found if css is None or css in e.get("class", "").split()]


def coords(polyline: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, pair.split(","))) for pair in polyline.get("points").split()]


def texts(svg: ET.Element, css: str) -> list[str]:
    return [e.text for e in all_of(svg, "text", css)]


def series(
    values: list[float | None], *, down: Collection[int] = (), step: timedelta = timedelta(minutes=10)
) -> list[Point]:
    return [Point(at=START + i * step, ms=ms, down=i in down) for i, ms in enumerate(values)]


def describes(svg: ET.Element) -> str:
    """What a screen reader announces, which is also the hover title."""
    assert svg.get("role") == "img"
    title = svg.find(SVG + "title").text
    assert svg.get("aria-label") == title
    return title


# sparkline


def test_sparkline_states_the_figures_in_words():
    svg = parse(sparkline(series([12, 50] + [31] * 34), label="shop"))
    assert describes(svg) == "shop, response time over the last 6 hours: 12 to 50 ms, average 31 ms"
    assert svg.get("width") == "100%" and svg.get("viewBox") == "0 0 120 32"


def test_sparkline_breaks_the_line_where_a_bucket_had_no_up_check():
    svg = parse(sparkline(series([10, 20, None, None, 30, 40, 50, None, 60]), label="shop"))
    lines = all_of(svg, "polyline", "chart-line")
    assert [len(coords(line)) for line in lines] == [2, 3, 2]
    # the lone last bucket is still a visible stroke, flat across its slot
    (left, y1), (right, y2) = coords(lines[-1])
    assert y1 == y2 and right - left > 10


def test_sparkline_is_scaled_to_its_own_maximum():
    small = parse(sparkline(series([20, 40, 80]), label="a"))
    large = parse(sparkline(series([200, 400, 800]), label="b"))
    ys = [y for _, y in coords(all_of(small, "polyline")[0])]
    assert ys == [y for _, y in coords(all_of(large, "polyline")[0])]
    assert min(ys) == ys[2] <= 2  # the slowest bucket touches the top
    assert (ys[0] - ys[1]) * 2 == pytest.approx(ys[1] - ys[2], abs=0.2)  # heights are proportional


def test_sparkline_marks_buckets_with_a_down_check():
    svg = parse(sparkline(series([10, None, 12, 11], down={1, 3}), label="shop"))
    marks = all_of(svg, "rect", "chart-down")
    assert [float(m.get("x")) // 30 for m in marks] == [1, 3]  # under the second and fourth of 4 slots of 30
    assert describes(svg).endswith("down in 2 of 4 intervals")


def test_sparkline_only_down_still_shows_the_marks():
    svg = parse(sparkline(series([None, None], down={0, 1}), label="shop"))
    assert "no successful checks" in describes(svg)
    assert len(all_of(svg, "rect", "chart-down")) == 2 and not all_of(svg, "polyline")


@pytest.mark.parametrize("points", [[], series([None] * 36)])
def test_sparkline_without_checks_says_so(points):
    svg = parse(sparkline(points, label="shop"))
    assert describes(svg).endswith("no checks yet")
    assert texts(svg, "chart-empty") == ["no checks yet"]
    assert not all_of(svg, "polyline")


def test_sparkline_escapes_the_label():
    svg = parse(sparkline(series([10]), label='<script>"&'))
    assert describes(svg).startswith('<script>"&, response time')
    assert not all_of(svg, "script") and not list(svg.iter("script"))


# response_chart


def chart(regions: dict[str, list[Point]], *, hours: float = 6) -> ET.Element:
    return parse(response_chart(regions, start=START, end=START + timedelta(hours=hours)))


def region_lines(svg: ET.Element) -> dict[str, list[ET.Element]]:
    """Each region's polylines, found by the title of their group."""
    groups = [g for g in svg.iter(SVG + "g") if g.find(SVG + "title") is not None]
    return {g.find(SVG + "title").text: g.findall(SVG + "polyline") for g in groups}


def test_chart_escapes_region_names():
    name = "<eu&west>"
    raw = str(response_chart({name: series([10, 20])}, start=START, end=START + timedelta(minutes=20)))
    assert name not in raw
    svg = ET.fromstring(raw)
    assert name in texts(svg, "chart-legend")
    assert list(region_lines(svg)) == [name]
    assert not list(svg.iter(SVG + "eu"))


def test_each_region_has_its_own_dash_pattern_as_well_as_colour():
    names = [f"region-{n}" for n in range(7)]
    svg = chart({name: series([10 + n, 20, 30]) for n, name in enumerate(names)})
    lines = region_lines(svg)
    assert list(lines) == names
    dashes = [only(lines[name]).get("stroke-dasharray") for name in names]
    assert len(set(dashes)) == 7
    classes = [only(lines[name]).get("class") for name in names]
    assert classes[:6] == [f"chart-line series-{n}" for n in range(6)] and classes[6] == "chart-line series-0"
    # the legend shows the same sample as the line, beside the region's name
    samples = list(all_of(svg, "line", "chart-line"))
    assert [s.get("stroke-dasharray") for s in samples] == dashes
    assert texts(svg, "chart-legend") == names


def only(items: list[ET.Element]) -> ET.Element:
    assert len(items) == 1
    return items[0]


@pytest.mark.parametrize(
    ("slowest", "labels"),
    [
        (80, ["0 ms", "20 ms", "40 ms", "60 ms", "80 ms"]),
        (730, ["0 ms", "200 ms", "400 ms", "600 ms", "800 ms"]),
        (95, ["0 ms", "50 ms", "100 ms"]),
        (3100, ["0 ms", "1,000 ms", "2,000 ms", "3,000 ms", "4,000 ms"]),
    ],
)
def test_y_axis_has_nice_ticks_in_ms(slowest, labels):
    svg = chart({"eu": series([slowest / 2, slowest])})
    assert texts(svg, "chart-tick")[: len(labels)] == labels
    grid = [float(line.get("y1")) for line in all_of(svg, "line", "chart-grid")]
    assert len(grid) == len(labels) and grid == sorted(grid, reverse=True)  # 0 at the bottom


@pytest.mark.parametrize("maximum", [0.3, 1, 7, 41, 99, 100, 101, 260, 999, 1000, 1234.5, 48_000])
def test_nice_ticks_are_round_and_cover_the_maximum(maximum):
    ticks = nice_ticks(maximum)
    assert 3 <= len(ticks) <= 5 and ticks[0] == 0
    step = ticks[1]
    assert all(b - a == pytest.approx(step) for a, b in itertools.pairwise(ticks))
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5)
    assert ticks[-1] >= maximum > ticks[-1] - step


def test_the_slowest_bucket_is_drawn_no_higher_than_the_top_tick():
    svg = chart({"eu": series([10, 80, 40])})
    top_tick = min(float(line.get("y1")) for line in all_of(svg, "line", "chart-grid"))
    ys = [y for _, y in coords(only(region_lines(svg)["eu"]))]
    assert min(ys) == pytest.approx(top_tick)


def test_time_axis_shows_hours_on_short_ranges_and_dates_on_long_ones():
    hours = texts(chart({"eu": series([10] * 36)}, hours=6), "chart-tick")
    assert [t for t in hours if ":" in t] == ["10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    day = texts(chart({"eu": series([10] * 24, step=timedelta(hours=1))}, hours=24), "chart-tick")
    assert "Nov 25" in day and "12:00" in day  # the date where the day changes
    month = parse(
        response_chart({"eu": series([10] * 30, step=timedelta(days=1))}, start=START, end=START + timedelta(days=30))
    )
    dates = [t for t in texts(month, "chart-tick") if not t.endswith("ms")]
    assert dates and all(t.split()[0] in ("Nov", "Dec") and t.split()[1].isdigit() for t in dates)
    assert 3 <= len(dates) <= 7


def test_down_buckets_are_marked_on_the_baseline_with_their_regions():
    svg = chart({"eu-west": series([10, None, 12], down={1}), "us-east": series([20, 21, 22], down={1})}, hours=0.5)
    baseline = float(only(all_of(svg, "line", "chart-axis")[:1]).get("y1"))
    mark = only([r for r in all_of(svg, "rect", "chart-down") if r.find(SVG + "title") is not None])
    assert float(mark.get("y")) + float(mark.get("height")) == pytest.approx(baseline)
    assert mark.find(SVG + "title").text == "Nov 24 10:10 UTC: down in eu-west, us-east"
    assert texts(svg, "chart-legend")[-1] == "down"
    assert "eu-west: 10 to 12 ms, average 11 ms, down in 1 of 3 intervals" in describes(svg)


@pytest.mark.parametrize("regions", [{}, {"eu": series([None] * 10)}])
def test_chart_without_checks_says_so(regions):
    svg = chart(regions)
    assert texts(svg, "chart-empty") == ["No checks in this range"]
    assert not all_of(svg, "polyline")
    assert describes(svg).endswith("no checks in this range")


# uptime_bars


def day(n: int, checks: int, up: int) -> DayUptime:
    return DayUptime(day=date(2026, 11, 23) + timedelta(days=n), checks=checks, up=up)


def bars(svg: ET.Element) -> list[ET.Element]:
    return all_of(svg, "rect", "bar")


def test_each_day_is_a_bar_classed_by_its_uptime():
    days = [
        day(0, 1000, 1000),
        day(1, 1000, 999),
        day(2, 10000, 9989),
        day(3, 100, 99),
        day(4, 10000, 9899),
        day(5, 0, 0),
    ]
    svg = parse(uptime_bars(days, label="shop"))
    classes = [b.get("class").split()[1] for b in bars(svg)]
    assert classes == ["bar-ok", "bar-ok", "bar-warn", "bar-warn", "bar-bad", "bar-none"]


def test_bad_days_differ_in_shape_not_only_in_colour():
    svg = parse(uptime_bars([day(0, 100, 100), day(1, 1000, 995), day(2, 100, 50), day(3, 0, 0)], label="shop"))
    ok, warn, bad, none = (float(b.get("height")) for b in bars(svg))
    assert ok == 34 and ok > warn > bad and none < bad
    ok_bar, _, bad_bar, _ = bars(svg)
    assert float(ok_bar.get("y")) + ok == pytest.approx(float(bad_bar.get("y")) + bad)  # both stand on the same ground


def test_bar_titles_give_the_day_the_percent_the_incidents_and_the_checks():
    days = [day(0, 4000, 3998), day(1, 0, 0), day(2, 1, 1), day(3, 100_000, 99_999)]
    days.append(DayUptime(days[0].day + timedelta(days=4), 10, 10, maintenance=5))
    incidents = {days[0].day: 2, days[3].day: 1}
    svg = parse(uptime_bars(days, label="s", incidents=incidents))
    assert [b.find(SVG + "title").text for b in bars(svg)] == [
        "2026-11-23: 99.95% up, 2 incidents (4,000 checks)",
        "2026-11-24: no data",
        "2026-11-25: 100% up, no incidents (1 check)",
        "2026-11-26: 99.99% up, 1 incident (100,000 checks)",  # 99.999 is not shown as a clean 100
        "2026-11-27: 100% up, no incidents (10 checks, maintenance left out)",
    ]


def test_bars_summarise_the_period_in_words():
    days = [day(n, 1000, 1000) for n in range(90)]
    days[10] = day(10, 1000, 991)
    days[50] = day(50, 1000, 991)
    svg = parse(uptime_bars(days, label="shop"))
    assert len(bars(svg)) == 90
    assert describes(svg) == "shop: 99.98% up over 90 days, 2 days with downtime"


def test_bars_summary_mentions_days_without_data():
    days = [day(n, 0, 0) for n in range(87)] + [day(87 + n, 100, 100) for n in range(3)]
    assert describes(parse(uptime_bars(days, label="new"))) == (
        "new: 100% up over 90 days, no downtime, 87 days without data"
    )
    assert describes(parse(uptime_bars([day(n, 0, 0) for n in range(90)], label="x"))) == "x: no data over 90 days"


def test_bars_escape_the_label():
    svg = parse(uptime_bars([day(0, 1, 1)], label="<shop & co>"))
    assert describes(svg).startswith("<shop & co>: ")


@pytest.mark.parametrize(
    ("percent", "text"), [(100, "100%"), (99.95, "99.95%"), (99.999, "99.99%"), (99.5, "99.5%"), (0, "0%")]
)
def test_format_percent(percent, text):
    assert format_percent(percent) == text
