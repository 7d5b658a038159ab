"""``/``: every monitor of the user with its status, response time, uptime and a sparkline.

The table body is also served alone (``/partials/monitors``), which app.js
fetches every ``[api] page_refresh`` to update the page in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from uptimed.rules import status as monitor_status
from uptimed.rules.services import Services
from uptimed.rules.status import MonitorView
from uptimed.store import stats
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


async def rows(context: Services, user_id: int) -> list[Row]:
    silence = context.settings.evaluate.region_silence
    views = await monitor_status.page(
        context.pool, user_id, after_id=None, limit=MAX_MONITORS, silence_intervals=silence
    )
    since = datetime.now(UTC) - timedelta(hours=SPARKLINE_HOURS)
    series = await stats.recent_response_times(
        context.pool, user_id, [v.monitor.id for v in views], since=since, buckets=SPARKLINE_BUCKETS
    )
    return sorted(
        (
            Row(
                view=v,
                sparkline=charts.sparkline(
                    series.get(v.monitor.id, []),
                    label=f"{v.monitor.name}, response time over the last {SPARKLINE_HOURS} hours",
                ),
            )
            for v in views
        ),
        key=_rank,
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


@router.get("/")
async def dashboard(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    table = await rows(context, visit.user.id)
    return render(
        request,
        "dashboard.html",
        rows=table,
        counts=counts(table),
        notice=visit.notice,
        refresh_s=context.settings.api.page_refresh,
        regions=context.settings.probe.all_regions,
        silent=silent_regions(table),
    )


@router.get("/partials/monitors")
async def monitor_rows(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    table = await rows(context, visit.user.id)
    return render(request, "_monitor_rows.html", rows=table, counts=counts(table), silent=silent_regions(table))
