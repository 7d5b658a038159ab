"""``/``: every monitor of the user with its status, response time, uptime and a sparkline.

Filters by tag and status and searches by name or target (``?tag=&status=&q=``,
the same filters as the API's list), and shows the maintenance that is on or
coming for the monitors. The table body is also served alone
(``/partials/monitors``, with the same query), which app.js fetches every
``[api] page_refresh`` to update the page in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from uptimed.rules import maintenance as planned_maintenance
from uptimed.rules import status as monitor_status
from uptimed.rules.maintenance import Planned
from uptimed.rules.services import Services
from uptimed.rules.status import MonitorView
from uptimed.store import monitors, stats
from uptimed.store.monitors import Filter
from uptimed.web import charts
from uptimed.web.context import Context
from uptimed.web.session import Visitor
from uptimed.web.templates import render

router = APIRouter(include_in_schema=False)

MAX_MONITORS = 1000
SPARKLINE_HOURS = 6
SPARKLINE_BUCKETS = 36

# Down first: what needs attention is at the top.
_ORDER = {"down": 0, "unknown": 2, "up": 3, "paused": 4}


@dataclass(frozen=True)
class Row:
    view: MonitorView
    sparkline: Markup

    @property
    def shown_status(self) -> str:
        """up, down, slow, paused or unknown: what the badge says."""
        return self.view.shown


def _rank(row: Row) -> tuple[int, str]:
    return (1 if row.shown_status == "slow" else _ORDER[row.view.status], row.view.monitor.name.lower())


STATUSES = ("down", "slow", "up", "paused", "unknown")

TagQuery = Annotated[str | None, Query(max_length=40)]
StatusQuery = Annotated[str | None, Query(max_length=20)]
SearchQuery = Annotated[str | None, Query(max_length=200)]


def chosen_filter(tag: str | None, status: str | None, q: str | None) -> Filter:
    """The filters asked for; an unknown status or an empty field filters nothing."""
    return Filter(
        tag=(tag or "").strip() or None,
        status=status if status in STATUSES else None,
        search=(q or "").strip() or None,
    )


def query_of(only: Filter) -> str:
    params = {"tag": only.tag, "status": only.status, "q": only.search}
    return urlencode({k: v for k, v in params.items() if v})


async def rows(context: Services, user_id: int, only: Filter | None = None) -> list[Row]:
    silence = context.settings.evaluate.region_silence
    views = await monitor_status.page(
        context.pool, user_id, after_id=None, limit=MAX_MONITORS, silence_intervals=silence, only=only
    )
    now = datetime.now(UTC)
    since = now - timedelta(hours=SPARKLINE_HOURS)
    series = await stats.recent_response_times(
        context.pool, user_id, [v.monitor.id for v in views], since=since, buckets=SPARKLINE_BUCKETS
    )
    # A monitor with less than the sparkline's hours of checks gets a line over the time it has, not a dash.
    young = [v.monitor.id for v in views if now - v.created_at < timedelta(hours=SPARKLINE_HOURS)]
    firsts = await stats.first_checks(context.pool, user_id, young, since=since) if young else {}
    spans: dict[int, timedelta] = {}
    for monitor_id, first in firsts.items():
        span = max(now - first, SPARKLINE_MIN)
        if span < timedelta(hours=SPARKLINE_HOURS) - SPARKLINE_MIN:
            fitted = await stats.recent_response_times(
                context.pool, user_id, [monitor_id], since=now - span, buckets=SPARKLINE_BUCKETS
            )
            series[monitor_id] = fitted.get(monitor_id, [])
            spans[monitor_id] = span
    return sorted(
        (
            Row(
                view=v,
                sparkline=charts.sparkline(
                    series.get(v.monitor.id, []),
                    label=f"{v.monitor.name}, response time over the last {_span_words(spans.get(v.monitor.id))}",
                ),
            )
            for v in views
        ),
        key=_rank,
    )


SPARKLINE_MIN = timedelta(minutes=10)


def _span_words(span: timedelta | None) -> str:
    if span is None:
        return f"{SPARKLINE_HOURS} hours"
    minutes = round(span.total_seconds() / 60)
    return (
        f"{minutes} minutes (since its first check)"
        if minutes < 120
        else f"{minutes // 60} hours (since its first check)"
    )


def silent_regions(table: list[Row]) -> dict[str, int]:
    """Per region, how many of these monitors it has stopped reporting for."""
    found: dict[str, int] = {}
    for row in table:
        for region in row.view.silent_regions:
            found[region] = found.get(region, 0) + 1
    return dict(sorted(found.items()))


def counts(table: list[Row]) -> dict[str, int]:
    tally = {"up": 0, "down": 0, "slow": 0, "paused": 0, "unknown": 0}
    for row in table:
        tally[row.shown_status] += 1
    return tally


async def maintenance_of(context: Services, user_id: int) -> list[Planned]:
    """The maintenance on or coming within a week for any of the user's monitors."""
    every = await monitors.page_overviews(context.pool, user_id, after_id=None, limit=MAX_MONITORS)
    return await planned_maintenance.for_monitors(context.pool, user_id, [o.monitor for o in every])


async def _table(
    request: Request, context: Services, user_id: int, tag: str | None, status: str | None, q: str | None
) -> dict[str, Any]:
    only = chosen_filter(tag, status, q)
    table = await rows(context, user_id, only)
    return {
        "rows": table,
        "counts": counts(table),
        "silent": silent_regions(table),
        "only": only,
        "filtered": bool(query_of(only)),
        "query": query_of(only),
        "planned": await maintenance_of(context, user_id),
        "now": datetime.now(UTC),
    }


@router.get("/")
async def dashboard(
    request: Request,
    visit: Visitor,
    context: Context,
    tag: TagQuery = None,
    status: StatusQuery = None,
    q: SearchQuery = None,
) -> HTMLResponse:
    return render(
        request,
        "dashboard.html",
        notice=visit.notice,
        refresh_s=context.settings.api.page_refresh,
        regions=context.settings.probe.all_regions,
        tags=await monitors.owner_tags(context.pool, visit.user.id),
        statuses=STATUSES,
        **await _table(request, context, visit.user.id, tag, status, q),
    )


@router.get("/partials/monitors")
async def monitor_rows(
    request: Request,
    visit: Visitor,
    context: Context,
    tag: TagQuery = None,
    status: StatusQuery = None,
    q: SearchQuery = None,
) -> HTMLResponse:
    return render(request, "_monitor_rows.html", **await _table(request, context, visit.user.id, tag, status, q))
