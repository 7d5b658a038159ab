"""``/maintenance``: the user's maintenance windows, and the form that plans or changes one.

A posted form is read into :class:`~uptimed.maintenance.MaintenanceIn`, the
model the API and the config file use, so a window the API would refuse is
refused here with the same words, next to its field. Times in the form are
read in the window's time zone. Windows declared in ``uptimed.toml`` are
read-only here.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from uptimed.durations import format_duration
from uptimed.maintenance import WEEKDAYS, MaintenanceIn, MaintenanceWindow, zone_of
from uptimed.monitor import Monitor
from uptimed.rules import maintenance as rules
from uptimed.rules.errors import Invalid, problems_of
from uptimed.rules.services import Services
from uptimed.store import maintenance, monitors, web_sessions
from uptimed.web.context import Context, IdPath
from uptimed.web.session import Form, Posted, Visitor
from uptimed.web.templates import render, viewer_zone

router = APIRouter(include_in_schema=False)

MAX_MONITORS = 1000
FIELDS = ("name", "kind", "start", "end", "days", "at", "cron", "duration", "time_zone", "monitor_ids", "tags")
"""The form's fields: a problem is shown beside the one it names."""
ZONES = sorted(zoneinfo.available_timezones())


def _local(moment: datetime | None, zone: str) -> str:
    """A ``datetime-local`` input's value in the window's zone."""
    if moment is None:
        return ""
    return moment.astimezone(zone_of(zone)).strftime("%Y-%m-%dT%H:%M")


def values_of(window: MaintenanceWindow | None, *, time_zone: str = "UTC") -> dict[str, Any]:
    if window is None:
        return {
            "name": "",
            "kind": "once",
            "start": "",
            "end": "",
            "days": [],
            "at": "",
            "cron": "",
            "duration": "",
            "time_zone": time_zone,
            "all_monitors": False,
            "monitor_ids": [],
            "tags": "",
        }
    kind = "once" if not window.recurring else ("cron" if window.cron else "weekly")
    return {
        "name": window.name,
        "kind": kind,
        "start": _local(window.start, window.time_zone),
        "end": _local(window.end, window.time_zone),
        "days": list(window.days),
        "at": window.at.strftime("%H:%M") if window.at else "",
        "cron": window.cron or "",
        "duration": format_duration(window.duration) if window.duration else "",
        "time_zone": window.time_zone,
        "all_monitors": window.all_monitors,
        "monitor_ids": [str(i) for i in window.monitor_ids],
        "tags": ", ".join(window.tags),
    }


def values_from(form: Form) -> dict[str, Any]:
    return {
        "name": form.get("name").strip(),
        "kind": form.get("kind") if form.get("kind") in ("once", "weekly", "cron") else "once",
        "start": form.get("start").strip(),
        "end": form.get("end").strip(),
        "days": [d for d in form.all("days") if d in WEEKDAYS],
        "at": form.get("at").strip(),
        "cron": form.get("cron").strip(),
        "duration": form.get("duration").strip(),
        "time_zone": form.get("time_zone").strip() or "UTC",
        "all_monitors": "all_monitors" in form,
        "monitor_ids": form.all("monitor_ids"),
        "tags": form.get("tags"),
    }


def _data(values: dict[str, Any]) -> dict[str, Any]:
    """The model's input: only the fields of the kind chosen, the others left out."""
    data: dict[str, Any] = {
        "name": values["name"],
        "time_zone": values["time_zone"],
        "all_monitors": values["all_monitors"],
        "monitor_ids": [int(v) for v in values["monitor_ids"] if v.isdigit() and len(v) <= 18],
        "tags": [t for t in (p.strip() for p in values["tags"].split(",")) if t],
    }
    if values["kind"] == "once":
        data.update(start=values["start"] or None, end=values["end"] or None)
    elif values["kind"] == "weekly":
        data.update(days=values["days"], at=values["at"] or None, duration=values["duration"] or None)
    else:
        data.update(cron=values["cron"] or None, duration=values["duration"] or None)
    return data


def validate(values: dict[str, Any]) -> MaintenanceIn | dict[str, str]:
    """The window the form describes, or each problem by the field it is shown beside."""
    try:
        return MaintenanceIn.model_validate(_data(values))
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for problem in problems_of(exc):
            where = (problem.loc or problem.about or ("form",))[0]
            name = {"monitors": "monitor_ids"}.get(str(where), str(where))
            errors.setdefault(name if name in FIELDS else "form", problem.msg)
        return errors


async def _owned(context: Services, user_id: int) -> list[Monitor]:
    return [o.monitor for o in await monitors.page_overviews(context.pool, user_id, after_id=None, limit=MAX_MONITORS)]


async def _form(
    request: Request,
    context: Services,
    user_id: int,
    values: dict[str, Any],
    *,
    window: MaintenanceWindow | None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "maintenance_form.html",
        status_code=422 if errors else 200,
        values=values,
        errors=errors or {},
        window=window,
        monitors=await _owned(context, user_id),
        tags=await monitors.owner_tags(context.pool, user_id),
        weekdays=WEEKDAYS,
        zones=ZONES,
        action=f"/maintenance/{window.id}/edit" if window else "/maintenance",
    )


@router.get("/maintenance")
async def maintenance_page(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    windows = await maintenance.for_owner(context.pool, visit.user.id)
    owned = await _owned(context, visit.user.id)
    names = {m.id: m.name for m in owned}
    now = datetime.now(UTC)
    rows = []
    for window in windows:
        schedule = window.schedule
        rows.append(
            {
                "window": window,
                "ongoing": schedule.covering(now),
                "next": schedule.next_after(now),
                "monitors": [names[i] for i in window.monitor_ids if i in names] + [f"tag {t}" for t in window.tags],
            }
        )
    return render(request, "maintenance.html", rows=rows, notice=visit.notice)


@router.get("/maintenance/new")
async def new_form(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    zone = viewer_zone(request, visit.user)
    return await _form(request, context, visit.user.id, values_of(None, time_zone=zone), window=None)


@router.post("/maintenance")
async def create(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    values = values_from(form)
    fields = validate(values)
    if isinstance(fields, dict):
        return await _form(request, context, visit.user.id, values, window=None, errors=fields)
    try:
        created = await rules.create(context.pool, visit.user.id, fields)
    except Invalid as invalid:
        errors = {"monitor_ids": invalid.problems[0].msg}
        return await _form(request, context, visit.user.id, values, window=None, errors=errors)
    await web_sessions.set_notice(context.pool, visit.token, f"Planned “{created.name}”: {created.describe()}.")
    return RedirectResponse("/maintenance", status_code=303)


@router.get("/maintenance/{window_id}/edit")
async def edit_form(request: Request, window_id: IdPath, visit: Visitor, context: Context) -> HTMLResponse:
    window = await rules.window(context.pool, visit.user.id, window_id, to_change=True)
    return await _form(request, context, visit.user.id, values_of(window), window=window)


@router.post("/maintenance/{window_id}/edit")
async def edit(request: Request, window_id: IdPath, visit: Visitor, form: Posted, context: Context) -> Response:
    window = await rules.window(context.pool, visit.user.id, window_id, to_change=True)
    values = values_from(form)
    fields = validate(values)
    if isinstance(fields, dict):
        return await _form(request, context, visit.user.id, values, window=window, errors=fields)
    try:
        saved = await rules.update(context.pool, window, fields)
    except Invalid as invalid:
        errors = {"monitor_ids": invalid.problems[0].msg}
        return await _form(request, context, visit.user.id, values, window=window, errors=errors)
    await web_sessions.set_notice(context.pool, visit.token, f"Saved “{saved.name}”: {saved.describe()}.")
    return RedirectResponse("/maintenance", status_code=303)


@router.post("/maintenance/{window_id}/delete")
async def delete(window_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    window = await rules.window(context.pool, visit.user.id, window_id, to_change=True)
    await rules.delete(context.pool, window)
    await web_sessions.set_notice(context.pool, visit.token, f"Deleted “{window.name}”.")
    return RedirectResponse("/maintenance", status_code=303)
