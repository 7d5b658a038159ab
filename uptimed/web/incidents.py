"""``/incidents``: every incident of the user's monitors; one incident's timeline; acknowledging from a link.

The list shows open incidents first (acknowledged or not), then the ones
that ended, newest first, 50 a page, filtered by status and by how far back.
An incident's page tells what happened to it, in order, with Acknowledge and
Withdraw buttons while it is open.

``/ack/<incident>/<integration>/<signature>`` is the page an alert's
acknowledge link opens, without sign-in: it shows the incident and an
Acknowledge button; only pressing it (a POST) acknowledges, once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from uptimed.evaluate.escalation import acknowledged_by
from uptimed.rules import incidents as incident_rules
from uptimed.rules.errors import Conflict
from uptimed.store import MAX_ID, incidents, web_sessions
from uptimed.store.incidents import IncidentRecord, IncidentStatus
from uptimed.web.context import Context, IdPath
from uptimed.web.monitors import shown_incident
from uptimed.web.session import (
    MaybeVisitor,
    Posted,
    Visitor,
    forgery,
    new_sign_in_token,
    read_form,
    set_cookie,
    sign_in_token_matches,
)
from uptimed.web.templates import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
OPEN_SHOWN = 200
STATUSES: dict[str, str] = {
    "": "Every status",
    "open": "Open",
    "unacknowledged": "Open, not acknowledged",
    "acknowledged": "Open, acknowledged",
    "resolved": "Resolved",
}
PERIODS: dict[str, tuple[str, timedelta | None]] = {
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "all": ("All time", None),
}

StatusQuery = Annotated[Literal["", "open", "unacknowledged", "acknowledged", "resolved"], Query()]
PeriodQuery = Annotated[Literal["24h", "7d", "30d", "all"], Query(alias="period")]


@router.get("/incidents")
async def incidents_page(
    request: Request,
    visit: Visitor,
    context: Context,
    status: StatusQuery = "",
    period: PeriodQuery = "30d",
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    now = datetime.now(UTC)
    length = PERIODS[period][1]
    since = now - length if length is not None else None
    chosen: IncidentStatus | None = status or None
    open_rows: list[IncidentRecord] = []
    if chosen != "resolved" and before is None:
        # Open incidents head the page whatever their age: they are what needs someone now.
        wanted: IncidentStatus = chosen if chosen in ("acknowledged", "unacknowledged") else "open"
        open_rows = await incidents.page_for_owner(
            context.pool, visit.user.id, monitor_id=None, status=wanted, since=None, before_id=None, limit=OPEN_SHOWN
        )
    ended: list[IncidentRecord] = []
    older = None
    if chosen in (None, "resolved"):
        found = await incidents.page_for_owner(
            context.pool,
            visit.user.id,
            monitor_id=None,
            status="resolved",
            since=since,
            before_id=before,
            limit=PAGE_SIZE + 1,
        )
        ended = found[:PAGE_SIZE]
        if len(found) > PAGE_SIZE:
            older = urlencode({"status": status, "period": period, "before": ended[-1].id})
    return render(
        request,
        "incidents.html",
        notice=visit.notice,
        open_rows=[shown_incident(r, now) for r in open_rows],
        ended=[shown_incident(r, now) for r in ended],
        status=status,
        period=period,
        statuses=STATUSES,
        periods=PERIODS,
        older=older,
        paged=before is not None,
        filtered=bool(status) or period != "30d",
    )


@router.get("/incidents/{incident_id}")
async def incident_page(request: Request, incident_id: IdPath, visit: Visitor, context: Context) -> HTMLResponse:
    timeline = await incident_rules.timeline(context.pool, context.registry, visit.user.id, incident_id)
    return render(
        request, "incident.html", notice=visit.notice, t=timeline, i=timeline.incident, acknowledged_by=acknowledged_by
    )


@router.post("/incidents/{incident_id}/ack")
async def acknowledge(incident_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    found = await incident_rules.incident(context.pool, visit.user.id, incident_id)
    await incident_rules.acknowledge(context.pool, found, by=visit.user.username, via="page")
    await web_sessions.set_notice(
        context.pool, visit.token, f"Acknowledged: no more escalation or reminders for “{found.monitor_name}”."
    )
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


@router.post("/incidents/{incident_id}/unack")
async def unacknowledge(incident_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    found = await incident_rules.incident(context.pool, visit.user.id, incident_id)
    await incident_rules.unacknowledge(context.pool, found, by=visit.user.username, via="page")
    await web_sessions.set_notice(
        context.pool, visit.token, f"Acknowledgement withdrawn: the escalation of “{found.monitor_name}” goes on."
    )
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


# An acknowledge link from an alert

Signature = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ACK_COOKIE = "uptimed_ack"
"""The acknowledge page's form token (double submit, as the sign-in form's): no other site can press its button."""
ACK_TOKEN_AGE_S = 3600
ACK_FIELD = "ack_token"


@router.get("/ack/{incident_id}/{integration_id}/{signature}")
async def ack_link_page(
    request: Request,
    incident_id: IdPath,
    integration_id: IdPath,
    signature: Signature,
    visit: MaybeVisitor,
    context: Context,
) -> HTMLResponse:
    link = await incident_rules.linked(context.pool, context.registry, incident_id, integration_id, signature)
    token = new_sign_in_token()
    response = _ack_page(request, link, visit is not None, token=token)
    set_cookie(response, request, context.settings.api, ACK_COOKIE, token, ACK_TOKEN_AGE_S)
    return response


@router.post("/ack/{incident_id}/{integration_id}/{signature}")
async def ack_by_link(
    request: Request,
    incident_id: IdPath,
    integration_id: IdPath,
    signature: Signature,
    visit: MaybeVisitor,
    context: Context,
) -> Response:
    sent = (await read_form(request)).get(ACK_FIELD) or []
    if not sign_in_token_matches(request, sent[-1] if sent else None, ACK_COOKIE):
        raise forgery()
    link = await incident_rules.linked(context.pool, context.registry, incident_id, integration_id, signature)
    try:
        await incident_rules.acknowledge_by_link(context.pool, link, who=visit.user.username if visit else None)
    except Conflict as refused:
        return _ack_page(request, link, visit is not None, refused=refused.detail)
    # Back to the link's own page, which now says it was acknowledged through it: a reload sends nothing again.
    return RedirectResponse(request.url.path, status_code=303)


def _ack_page(
    request: Request,
    link: incident_rules.LinkedIncident,
    signed_in: bool,
    *,
    refused: str | None = None,
    token: str | None = None,
) -> HTMLResponse:
    incident = link.incident
    over = incident.resolved_at is not None
    return render(
        request,
        "ack.html",
        status_code=409 if refused else 200,
        link=link,
        i=incident,
        seconds=((incident.resolved_at or datetime.now(UTC)) - incident.opened_at).total_seconds(),
        over=over,
        refused=refused,
        can_acknowledge=not over and incident.acknowledged_at is None and not link.used,
        signed_in=signed_in,
        token=token,
    )
