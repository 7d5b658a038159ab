"""The public status page: its settings (``/status-page``) and the page itself (``/status/{slug}``).

The public page needs no sign-in and shows only what its owner chose: each
chosen monitor's name, state, 90-day uptime bars (each day's tooltip: date,
uptime, incidents), open incidents, the incident history of those days, and
maintenance that is on or coming. One line says the state in words that
match it: operational, degraded, maintenance, partial or major outage. What
it shows is built as :class:`PublicMonitor` values that hold nothing else,
so no target URL, error text, cause or owner detail can reach the template.
An unpublished page answers exactly like one that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from uptimed.monitor import Monitor
from uptimed.rules import maintenance as planned_maintenance
from uptimed.rules import status as monitor_status
from uptimed.rules.services import Services
from uptimed.store import incidents, monitors, stats, status_pages, web_sessions
from uptimed.store.status_pages import SlugTaken, StatusPage
from uptimed.web import charts
from uptimed.web.context import Context
from uptimed.web.session import PageError, Posted, Visitor
from uptimed.web.templates import render

log = structlog.get_logger()

router = APIRouter(include_in_schema=False)

UPTIME_DAYS = 90
MAX_MONITORS = 1000
MAX_OPEN_INCIDENTS = 100
MAX_TITLE = 100
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
"""As the table's CHECK: 1 to 64 lowercase letters, digits and hyphens, not starting or ending with a hyphen."""


def _no_such_page() -> PageError:
    return PageError(404, "Not found", "There is no status page at this address.")


# Settings, for the signed-in owner


class _Values(TypedDict):
    """The settings form's values, as shown and as saved."""

    published: bool
    slug: str
    title: str
    monitor_ids: list[int]


def _settings_page(
    request: Request,
    context: Services,
    *,
    owned: list[Monitor],
    values: _Values,
    errors: dict[str, str] | None = None,
    saved: StatusPage | None,
    notice: str | None = None,
) -> HTMLResponse:
    return render(
        request,
        "status_settings.html",
        status_code=422 if errors else 200,
        monitors=owned,
        values=values,
        errors=errors or {},
        saved=saved,
        notice=notice,
        # A path, not request.url_for(): behind a reverse proxy that would name uptimed's own address.
        public_url=request.app.url_path_for("public_page", slug=saved.slug) if saved and saved.published else None,
    )


def _values_of(page: StatusPage | None) -> _Values:
    if page is None:
        return {"published": False, "slug": "", "title": "Service status", "monitor_ids": []}
    return {"published": page.published, "slug": page.slug, "title": page.title, "monitor_ids": page.monitor_ids}


async def _owned(context: Services, user_id: int) -> list[Monitor]:
    return [o.monitor for o in await monitors.page_overviews(context.pool, user_id, after_id=None, limit=MAX_MONITORS)]


@router.get("/status-page")
async def settings_page(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    page = await status_pages.get_for_owner(context.pool, visit.user.id)
    owned = await _owned(context, visit.user.id)
    return _settings_page(request, context, owned=owned, values=_values_of(page), saved=page, notice=visit.notice)


def _problems(values: _Values) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not SLUG.fullmatch(values["slug"]):
        problems["slug"] = (
            "use 1 to 64 lowercase letters, digits and hyphens, starting and ending with a letter or digit"
        )
    if not values["title"]:
        problems["title"] = "a title is needed"
    elif len(values["title"]) > MAX_TITLE:
        problems["title"] = f"must be at most {MAX_TITLE} characters"
    return problems


@router.post("/status-page")
async def save_settings(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    owned = await _owned(context, visit.user.id)
    own_ids = {m.id for m in owned}
    values: _Values = {
        "published": "published" in form,
        "slug": form.get("slug").strip(),
        "title": form.get("title").strip(),
        "monitor_ids": [int(v) for v in form.all("monitor_ids") if v.isdigit() and int(v) in own_ids],
    }
    problems = _problems(values)
    if not problems:
        try:
            await status_pages.save(context.pool, visit.user.id, **values)
        except SlugTaken:
            problems["slug"] = "taken: another status page already uses this address"
    if problems:
        saved = await status_pages.get_for_owner(context.pool, visit.user.id)
        return _settings_page(request, context, owned=owned, values=values, errors=problems, saved=saved)
    log.info("status_page.saved", user_id=visit.user.id, published=values["published"])
    notice = "Status page saved and published." if values["published"] else "Status page saved (not published)."
    await web_sessions.set_notice(context.pool, visit.token, notice)
    return RedirectResponse("/status-page", status_code=303)


# The public page: no Visitor, so no session is read and nothing of the owner's shows


@dataclass(frozen=True)
class OpenIncident:
    opened_at: datetime
    seconds: float


@dataclass(frozen=True)
class PublicMonitor:
    """All the public page knows of a monitor."""

    name: str
    status: str
    """up, down, slow, paused or unknown."""
    bars: Markup
    uptime: float | None
    """Percent of checks up over the days the bars cover (maintenance left out); None without checks."""
    incidents: list[OpenIncident]
    maintenance: bool = False
    """A maintenance window is on for it now."""


@dataclass(frozen=True)
class PastIncident:
    """An incident of the days shown, as the public sees it: no cause, no error text."""

    monitor: str
    opened_at: datetime
    resolved_at: datetime | None
    seconds: float


@dataclass(frozen=True)
class PublicMaintenance:
    name: str
    start: datetime
    end: datetime
    ongoing: bool
    monitors: list[str]


@dataclass(frozen=True)
class Overall:
    state: str
    """operational, degraded, maintenance, partial or major."""
    words: str


def overall(statuses: list[str], *, maintenance: bool = False) -> Overall:
    """One verdict for the page, in words that match it; paused and not-yet-checked monitors do not count."""
    counted = [s for s in statuses if s in ("up", "slow", "down")]
    down = counted.count("down")
    if down and down == len(counted):
        return Overall("major", "Major outage")
    if down:
        return Overall("partial", f"Partial outage: {down} of {len(counted)} down")
    if "slow" in counted:
        return Overall("degraded", "Degraded performance")
    if maintenance:
        return Overall("maintenance", "Maintenance in progress")
    return Overall("operational", "All systems operational")


def _uptime(days: list[stats.DayUptime]) -> float | None:
    total = sum(d.checks for d in days)
    return 100.0 * sum(d.up for d in days) / total if total else None


async def public_monitors(context: Services, page: StatusPage) -> list[PublicMonitor]:
    chosen = set(page.monitor_ids)
    overviews = {
        v.monitor.id: v
        for v in await monitor_status.page(context.pool, page.owner_id, after_id=None, limit=MAX_MONITORS)
        if v.monitor.id in chosen
    }
    days = await stats.daily_uptime(context.pool, page.owner_id, list(overviews), days=UPTIME_DAYS)
    per_day = await incidents_per_day(context, page, list(overviews))
    now = datetime.now(UTC)
    ongoing: dict[int, list[OpenIncident]] = {}
    for record in await incidents.page_for_owner(
        context.pool,
        page.owner_id,
        monitor_id=None,
        open_only=True,
        since=None,
        before_id=None,
        limit=MAX_OPEN_INCIDENTS,
    ):
        if record.monitor_id in overviews:
            ongoing.setdefault(record.monitor_id, []).append(
                OpenIncident(record.opened_at, (now - record.opened_at).total_seconds())
            )
    shown: list[PublicMonitor] = []
    for monitor_id in page.monitor_ids:
        view = overviews.get(monitor_id)
        if view is None:
            continue
        name = view.monitor.name
        history = days.get(monitor_id, [])
        shown.append(
            PublicMonitor(
                name=name,
                status=view.shown,
                bars=charts.uptime_bars(
                    history,
                    label=f"{name}, uptime per day over the last {UPTIME_DAYS} days",
                    incidents=per_day.get(monitor_id, {}),
                ),
                uptime=_uptime(history),
                incidents=ongoing.get(monitor_id, []),
                maintenance=view.maintenance is not None,
            )
        )
    return shown


MAX_HISTORY = 100


async def _history(context: Services, page: StatusPage, monitor_ids: list[int]) -> list[PastIncident]:
    """The incidents of the chosen monitors that began in the days the bars cover, newest first."""
    since = datetime.now(UTC) - timedelta(days=UPTIME_DAYS)
    found = await incidents.page_for_owner(
        context.pool, page.owner_id, monitor_id=None, open_only=False, since=since, before_id=None, limit=1000
    )
    now = datetime.now(UTC)
    chosen = set(monitor_ids)
    return [
        PastIncident(r.monitor_name, r.opened_at, r.resolved_at, ((r.resolved_at or now) - r.opened_at).total_seconds())
        for r in found
        if r.monitor_id in chosen
    ][:MAX_HISTORY]


async def incidents_per_day(context: Services, page: StatusPage, monitor_ids: list[int]) -> dict[int, dict[date, int]]:
    """Per monitor, how many incidents began on each UTC day the bars cover."""
    since = datetime.now(UTC) - timedelta(days=UPTIME_DAYS)
    found = await incidents.page_for_owner(
        context.pool, page.owner_id, monitor_id=None, open_only=False, since=since, before_id=None, limit=10_000
    )
    counts: dict[int, dict[date, int]] = {}
    for record in found:
        if record.monitor_id in monitor_ids:
            by_day = counts.setdefault(record.monitor_id, {})
            day = record.opened_at.astimezone(UTC).date()
            by_day[day] = by_day.get(day, 0) + 1
    return counts


async def _maintenance(context: Services, page: StatusPage) -> list[PublicMaintenance]:
    every = await monitors.page_overviews(context.pool, page.owner_id, after_id=None, limit=MAX_MONITORS)
    chosen = [o.monitor for o in every if o.monitor.id in page.monitor_ids]
    names = {m.id: m.name for m in chosen}
    now = datetime.now(UTC)
    return [
        PublicMaintenance(
            name=p.window.name,
            start=p.occurrence.start,
            end=p.occurrence.end,
            ongoing=p.occurrence.start <= now,
            monitors=[names[i] for i in p.monitor_ids],
        )
        for p in await planned_maintenance.for_monitors(context.pool, page.owner_id, chosen)
    ]


async def _published(context: Services, slug: str) -> StatusPage:
    page = await status_pages.get_published_by_slug(context.pool, slug) if SLUG.fullmatch(slug) else None
    if page is None:
        raise _no_such_page()
    return page


async def _body(context: Services, page: StatusPage) -> dict[str, Any]:
    shown = await public_monitors(context, page)
    return {
        "title": page.title,
        "slug": page.slug,
        "monitors": shown,
        "overall": overall([m.status for m in shown], maintenance=any(m.maintenance for m in shown)),
        "days": UPTIME_DAYS,
        "history": await _history(context, page, page.monitor_ids),
        "maintenance": await _maintenance(context, page),
        "checked_at": datetime.now(UTC),
    }


@router.get("/status/{slug}", name="public_page")
async def public_page(request: Request, slug: str, context: Context) -> HTMLResponse:
    page = await _published(context, slug)
    return render(
        request,
        "status_public.html",
        private=False,
        visit=None,
        refresh_s=context.settings.api.page_refresh,
        **await _body(context, page),
    )


@router.get("/status/{slug}/partial")
async def public_partial(request: Request, slug: str, context: Context) -> HTMLResponse:
    page = await _published(context, slug)
    return render(request, "_status_body.html", private=False, visit=None, **await _body(context, page))
