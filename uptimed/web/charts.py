"""Inline SVG charts rendered on the server: no script, no chart library.

Each chart is a :class:`markupsafe.Markup` to drop into a template. It scales
with its container (``viewBox`` and ``width="100%"``), says what it shows in
words (``role="img"``, ``aria-label`` and ``<title>``) and carries no colour:
the stylesheet themes these classes.

- ``chart`` on every ``<svg>``, with ``sparkline``, ``response-chart`` or ``uptime-bars``
- ``chart-line`` and ``series-0`` … ``series-5``: a line (polylines and legend samples)
- ``chart-down``: a bucket with a 'down' check (small rectangles on the baseline)
- ``chart-axis``, ``chart-grid``, ``chart-tick``, ``chart-legend``, ``chart-empty``
- ``bar`` with ``bar-ok``, ``bar-warn``, ``bar-bad`` or ``bar-none``: a day of uptime

Colour is never the only signal: each region's line has its own dash
pattern, and a day's bar is shorter the worse the day was (a day without
data is a short dash).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from markupsafe import Markup, escape

from uptimed.store.stats import DayUptime, Point

_SERIES_CLASSES = 6
# Seven patterns against six colour classes: no two of the first 42 regions look alike.
_DASHES = ("none", "8 4", "2 3", "10 3 2 3", "1 5", "14 5", "5 2 1 2 1 2")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TIME_STEPS = (
    *(timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30)),
    *(timedelta(hours=h) for h in (1, 2, 3, 6, 12)),
    *(timedelta(days=d) for d in (1, 2, 7, 14)),
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FONT_SIZE = 12
_CHAR_WIDTH = 7  # a generous average at _FONT_SIZE, to lay out the legend
_LEGEND_ROW = 18.0


def sparkline(points: Sequence[Point], *, label: str, width: int = 120, height: int = 32) -> Markup:
    """A small line of response times, scaled to their maximum, with a mark under each bucket that had a down check.

    The line breaks where a bucket had no 'up' check.
    """
    description = f"{label}, response time{_period(points)}: {_summary(points, nothing='no checks yet')}"
    values = [p.ms for p in points if p.ms is not None]
    if not values and not any(p.down for p in points):
        text = _text("no checks yet", width / 2, height / 2 + 4, "chart-empty", anchor="middle")
        return _svg("sparkline", width, height, description, [text])
    slot = width / len(points)
    top, bottom = 2.0, height - 5.0  # the bottom 4 units hold the down marks
    peak = max(values, default=0.0) or 1.0

    def bucket(i: int, ms: float) -> tuple[float, float, float]:
        return i * slot, bottom - ms / peak * (bottom - top), (i + 1) * slot

    body = [_polyline([bucket(i, ms) for i, _, ms in run], "chart-line series-0") for run in _runs(points)]
    body += [
        _rect(i * slot + 0.5, height - 3, max(slot - 1, 1), 3, "chart-down") for i, p in enumerate(points) if p.down
    ]
    return _svg("sparkline", width, height, description, body)


def response_chart(
    series: Mapping[str, Sequence[Point]], *, start: datetime, end: datetime, width: int = 720, height: int = 240
) -> Markup:
    """Response time per region from ``start`` to ``end``: one line per region, y axis in ms, time on x (UTC).

    Buckets with a down check are marked on the baseline; a legend names the regions.
    """
    start, end = _utc(start), _utc(end)
    span = end - start
    if span <= timedelta(0):
        raise ValueError(f"the range must end after it starts ({start} .. {end})")
    title = f"Response time by region, {_moment(start)} to {_moment(end)} UTC"
    has_down = any(p.down for points in series.values() for p in points)
    values = [p.ms for points in series.values() for p in points if p.ms is not None]
    if not values and not has_down:
        text = _text("No checks in this range", width / 2, height / 2, "chart-empty", anchor="middle")
        return _svg("response-chart", width, height, f"{title}: no checks in this range", [text])

    legend = [(region, _line(0, 0, 24, 0, _series_class(i), _dash(i))) for i, region in enumerate(series)]
    if has_down:
        legend.append(("down", _rect(0, -4, 24, 4, "chart-down")))
    legend_rows = _legend_rows([name for name, _ in legend], width)
    # Room on the left for the ms labels, on the right for half of the last time label.
    left, right, top = 56.0, width - 24.0, 8.0
    bottom = height - 26.0 - _LEGEND_ROW * (max(row for _, row in legend_rows) + 1)
    ticks = nice_ticks(max(values, default=0.0))

    def x_of(at: datetime) -> float:
        return min(max(left + (at - start) / span * (right - left), left), right)

    def y_of(ms: float) -> float:
        return bottom - ms / ticks[-1] * (bottom - top)

    body: list[str] = []
    for tick in ticks:
        y = y_of(tick)
        body.append(_line(left, y, right, y, "chart-grid"))
        body.append(_text(f"{_plain_number(tick)} ms", left - 6, y + 4, "chart-tick", anchor="end"))
    body.append(_line(left, bottom, right, bottom, "chart-axis"))
    for at in _time_ticks(start, end, most=max(2, int((right - left) // 90))):
        x = x_of(at)
        body.append(_line(x, bottom, x, bottom + 4, "chart-axis"))
        body.append(_text(_time_label(at, span), x, bottom + 17, "chart-tick", anchor="middle"))

    down_regions: dict[tuple[datetime, datetime], list[str]] = {}
    for index, (region, points) in enumerate(series.items()):
        step = _step(points, end)
        lines = [
            _polyline([(x_of(at), y_of(ms), x_of(at + step)) for _, at, ms in run], _series_class(index), _dash(index))
            for run in _runs(points)
        ]
        body.append(f"<g><title>{escape(region)}</title>{''.join(lines)}</g>")
        for p in points:
            if p.down:
                down_regions.setdefault((p.at, p.at + step), []).append(region)
    for (since, until), regions in down_regions.items():
        x1, x2 = x_of(since), x_of(until)
        mark = f"{_moment(since)} UTC: down in {', '.join(regions)}"
        body.append(_rect(x1, bottom - 4, max(x2 - x1, 1), 4, "chart-down", title=mark))

    for (name, sample), (x, row) in zip(legend, legend_rows, strict=True):
        y = bottom + 34 + row * _LEGEND_ROW
        label = _text(name, 30, 4, "chart-legend")
        body.append(f'<g class="chart-legend" transform="translate({_num(x)} {_num(y)})">{sample}{label}</g>')

    figures = "; ".join(f"{region}: {_summary(points, nothing='no checks')}" for region, points in series.items())
    return _svg("response-chart", width, height, f"{title}. {figures}", body)


def uptime_bars(
    days: Sequence[DayUptime],
    *,
    label: str,
    width: int = 720,
    height: int = 34,
    incidents: Mapping[date, int] | None = None,
) -> Markup:
    """One bar per day, oldest first: full height at >= 99.9 % up, lower below, a short dash without data.

    Each bar's tooltip says its date, its uptime and how many incidents began that day (``incidents``).
    """
    incidents = incidents or {}
    if not days:
        return _svg("uptime-bars", width, height, f"{label}: no data", [])
    slot = width / len(days)
    gap = min(2.0, slot * 0.2)
    body = []
    for i, day in enumerate(days):
        kind = _bar_kind(day.percent)
        if kind == "bar-none":
            bar_height, y = 4.0, (height - 4) / 2
        else:
            bar_height = height * {"bar-ok": 1.0, "bar-warn": 0.8, "bar-bad": 0.55}[kind]
            y = height - bar_height
        title = _day_title(day, incidents.get(day.day, 0))
        body.append(_rect(i * slot + gap / 2, y, slot - gap, bar_height, f"bar {kind}", title=title))
    return _svg("uptime-bars", width, height, _uptime_summary(days, label), body)


def nice_ticks(maximum: float, *, most: int = 5) -> list[float]:
    """3 to ``most`` evenly spaced ticks from 0 to at least ``maximum``, on steps of 1, 2 or 5 × 10ⁿ."""
    if maximum <= 0:
        maximum = 100.0  # nothing to scale to: show a plausible axis
    magnitude = 10 ** math.floor(math.log10(maximum / (most - 1)))
    # Steps 10x the magnitude always fit, and each factor is at most 2.5x the one before: never fewer than 3 ticks.
    step = next(f * magnitude for f in (1, 2, 5, 10) if math.ceil(maximum / (f * magnitude) - 1e-9) <= most - 1)
    count = max(math.ceil(maximum / step - 1e-9), 2)
    return [round(n * step, 10) for n in range(count + 1)]


def format_ms(ms: float) -> str:
    """'0.4 ms', '31 ms', '1,234 ms'."""
    return f"{_ms_number(ms)} ms"


def format_percent(percent: float) -> str:
    """'100%', '99.95%', '99.99%' for 99.999 (never rounded up to 100 when something was down)."""
    text = f"{percent:.2f}"
    if percent < 100 and text == "100.00":
        text = "99.99"
    return text.rstrip("0").rstrip(".") + "%"


def _svg(kind: str, width: float, height: float, label: str, body: Iterable[str]) -> Markup:
    label_text = escape(label)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" viewBox="0 0 {_num(width)} {_num(height)}"'
        f' width="100%" font-size="{_FONT_SIZE}" role="img" aria-label="{label_text}">'
        f"<title>{label_text}</title>{''.join(body)}</svg>"
    )


def _num(value: float) -> str:
    """A coordinate to one decimal, without a trailing '.0'."""
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _polyline(buckets: Sequence[tuple[float, float, float]], css: str, dash: str | None = None) -> str:
    """A line through the middle of each (left, y, right) bucket; a lone bucket is a flat stroke across it."""
    if len(buckets) == 1:
        left, y, right = buckets[0]
        coords = [(left, y), (right, y)]
    else:
        coords = [((left + right) / 2, y) for left, y, right in buckets]
    points = " ".join(f"{_num(x)},{_num(y)}" for x, y in coords)
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline class="{css}"{dashed} fill="none" points="{points}"/>'


def _line(x1: float, y1: float, x2: float, y2: float, css: str, dash: str | None = None) -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line class="{css}"{dashed} x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}"/>'


def _rect(x: float, y: float, width: float, height: float, css: str, *, title: str | None = None) -> str:
    geometry = f'x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" height="{_num(height)}"'
    if title is None:
        return f'<rect class="{css}" {geometry}/>'
    return f'<rect class="{css}" {geometry}><title>{escape(title)}</title></rect>'


def _text(text: str, x: float, y: float, css: str, *, anchor: str = "start") -> str:
    return f'<text class="{css}" x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}">{escape(text)}</text>'


def _series_class(index: int) -> str:
    return f"chart-line series-{index % _SERIES_CLASSES}"


def _dash(index: int) -> str:
    return _DASHES[index % len(_DASHES)]


def _runs(points: Sequence[Point]) -> list[list[tuple[int, datetime, float]]]:
    """The stretches of consecutive buckets that have a response time, one line each: (index, start, ms) a bucket."""
    runs: list[list[tuple[int, datetime, float]]] = []
    previous = -2
    for index, point in enumerate(points):
        if point.ms is None:
            continue
        if index != previous + 1:
            runs.append([])
        runs[-1].append((index, point.at, point.ms))
        previous = index
    return runs


def _step(points: Sequence[Point], end: datetime) -> timedelta:
    """The width of a bucket: the distance between the first two, or up to ``end`` for a lone one."""
    if len(points) >= 2:
        return points[1].at - points[0].at
    return end - points[0].at if points else timedelta(0)


def _legend_rows(names: Sequence[str], width: float) -> list[tuple[float, int]]:
    """Where each legend item goes: (x, row), wrapping to a new row when the next would overflow."""
    places: list[tuple[float, int]] = []
    x, row = 8.0, 0
    for name in names:
        item_width = 24 + 6 + len(name) * _CHAR_WIDTH + 18
        if x > 8 and x + item_width > width:
            x, row = 8.0, row + 1
        places.append((x, row))
        x += item_width
    return places


def _ms_number(ms: float) -> str:
    return f"{ms:.1f}".removesuffix(".0") if ms < 10 else f"{round(ms):,}"


def _plain_number(value: float) -> str:
    """A tick value: '0', '50', '1,000', '0.5'."""
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


def _summary(points: Sequence[Point], *, nothing: str) -> str:
    """The figures of a series in words: '12 to 80 ms, average 31 ms, down in 2 of 36 intervals'."""
    values = [p.ms for p in points if p.ms is not None]
    downs = sum(p.down for p in points)
    if not values and not downs:
        return nothing
    if not values:
        words = "no successful checks"
    else:
        low, high = min(values), max(values)
        spread = format_ms(high) if _ms_number(low) == _ms_number(high) else f"{_ms_number(low)} to {format_ms(high)}"
        words = f"{spread}, average {format_ms(sum(values) / len(values))}"
    if downs:
        words += f", down in {downs} of {len(points)} intervals"
    return words


def _period(points: Sequence[Point]) -> str:
    """' over the last 6 hours', from the buckets' spacing; '' when it cannot be told."""
    if len(points) < 2:
        return ""
    seconds = round((points[1].at - points[0].at).total_seconds() * len(points))
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        count, unit = seconds // 86400, "day"
    elif seconds % 3600 == 0:
        count, unit = seconds // 3600, "hour"
    else:
        count, unit = round(seconds / 60), "minute"
    return f" over the last {unit}" if count == 1 else f" over the last {count} {unit}s"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(moment: datetime) -> str:
    return f"{_MONTHS[moment.month - 1]} {moment.day}"


def _moment(moment: datetime) -> str:
    """'Nov 24 10:05' (UTC)."""
    moment = _utc(moment)
    return f"{_day(moment)} {moment:%H:%M}"


def _time_label(moment: datetime, span: timedelta) -> str:
    """'10:00' on a range of up to 2 days ('Nov 24' at midnight, where the day changes), 'Nov 24' beyond."""
    if span <= timedelta(days=2) and (moment.hour, moment.minute) != (0, 0):
        return f"{moment:%H:%M}"
    return _day(moment)


def _time_ticks(start: datetime, end: datetime, *, most: int) -> list[datetime]:
    """Round moments (UTC) from ``start`` to ``end``, on the smallest step that gives at most ``most``."""
    span = end - start
    step = next((s for s in _TIME_STEPS if span / s <= most), timedelta(days=math.ceil(span / timedelta(days=most))))
    moment = _EPOCH + -(-(start - _EPOCH) // step) * step
    ticks = []
    while moment <= end:
        ticks.append(moment)
        moment += step
    return ticks


def _bar_kind(percent: float | None) -> str:
    if percent is None:
        return "bar-none"
    # The tolerance keeps 2997 of 3000 on the right side of 99.9 whatever the float rounding.
    if percent >= 99.9 - 1e-9:
        return "bar-ok"
    return "bar-warn" if percent >= 99 - 1e-9 else "bar-bad"


def _day_title(day: DayUptime, incidents: int = 0) -> str:
    """'2026-11-23: 99.95% up, 1 incident (2,880 checks)', or '2026-11-23: no data'; maintenance said when left out."""
    happened = f", {_count(incidents, 'incident')}" if incidents else ", no incidents"
    maintenance = ", maintenance left out" if day.maintenance else ""
    if day.percent is None:
        return f"{day.day.isoformat()}: {'maintenance only' if day.maintenance else 'no data'}{happened if incidents else ''}"
    checks = "1 check" if day.checks == 1 else f"{day.checks:,} checks"
    return f"{day.day.isoformat()}: {format_percent(day.percent)} up{happened} ({checks}{maintenance})"


def _uptime_summary(days: Sequence[DayUptime], label: str) -> str:
    """'shop: 99.98% up over 90 days, 2 days with downtime[, 30 days without data]'."""
    checks = sum(d.checks for d in days)
    if not checks:
        return f"{label}: no data over {_count(len(days), 'day')}"
    percent = 100.0 * sum(d.up for d in days) / checks
    bad_days = sum(d.up < d.checks for d in days)
    downtime = f"{_count(bad_days, 'day')} with downtime" if bad_days else "no downtime"
    summary = f"{label}: {format_percent(percent)} up over {_count(len(days), 'day')}, {downtime}"
    empty_days = sum(not d.checks for d in days)
    return summary + (f", {_count(empty_days, 'day')} without data" if empty_days else "")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"
