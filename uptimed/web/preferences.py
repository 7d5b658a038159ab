"""``/preferences``: what a user chooses for their pages, today the time zone times are shown in.

Without a choice the pages use the browser's zone (app.js tells it in a
cookie), else UTC. Every time on a page is a ``<time>`` element whose
tooltip keeps the exact instant in UTC.
"""

from __future__ import annotations

import zoneinfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from uptimed.store import users, web_sessions
from uptimed.web.context import Context
from uptimed.web.session import Posted, Visitor
from uptimed.web.templates import ZONE_COOKIE, render, zone_named

router = APIRouter(include_in_schema=False)

ZONES = sorted(zoneinfo.available_timezones())


def _page(request: Request, chosen: str, *, error: str | None = None, notice: str | None = None) -> HTMLResponse:
    return render(
        request,
        "preferences.html",
        status_code=422 if error else 200,
        zones=ZONES,
        chosen=chosen,
        browser_zone=request.cookies.get(ZONE_COOKIE) if zone_named(request.cookies.get(ZONE_COOKIE)) else None,
        error=error,
        notice=notice,
    )


@router.get("/preferences")
async def preferences_page(request: Request, visit: Visitor) -> HTMLResponse:
    return _page(request, visit.user.time_zone or "", notice=visit.notice)


@router.post("/preferences")
async def save(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    chosen = form.get("time_zone").strip()
    if chosen and zone_named(chosen) is None:
        return _page(request, chosen, error=f"“{chosen}” is not a time zone: choose one from the list.")
    await users.set_time_zone(context.pool, visit.user.id, chosen or None)
    shown = chosen or "your browser's"
    await web_sessions.set_notice(context.pool, visit.token, f"Times are shown in {shown} time zone from now on.")
    return RedirectResponse("/preferences", status_code=303)
