"""``/notifications``: the user's delivery log, newest first, 50 a page, filtered by status and integration.

A filter the user cannot have meant (a status that does not exist, an
integration that is not theirs or was deleted) is left out with a message
saying so, and the page still shows the log: a stale bookmark should lead
somewhere useful, and nothing of another user is ever shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from uptimed.monitor import Monitor
from uptimed.rules.integrations import name_of
from uptimed.rules.services import Services
from uptimed.store import MAX_ID, integrations, monitors, notification_log
from uptimed.store.notification_log import LogEntry
from uptimed.web.context import Context
from uptimed.web.integrations import MAX_INTEGRATIONS
from uptimed.web.session import Visitor
from uptimed.web.templates import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
STATUSES = ("SENT", "RETRYING", "FAILED", "PENDING")
ERROR_SHOWN = 80
"""Characters of an error shown in the table; the whole text is one click away."""


@dataclass(frozen=True)
class LogRow:
    entry: LogEntry
    kind: str
    """``down``, ``up``, ``slow``, ``escalated``, ``acknowledged``: the event type without its prefix."""
    integration: str
    monitor: Monitor | None
    """The monitor, while it still exists."""


@dataclass(frozen=True)
class Filters:
    """The filters that apply, and why any asked for does not."""

    status: str | None
    integration: int | None
    problems: list[str]

    def query(self, **more: int) -> str:
        """The filters (plus ``more``) as a query string, for the pages' links."""
        params: dict[str, str | int] = {}
        if self.status:
            params["status"] = self.status
        if self.integration:
            params["integration"] = self.integration
        return urlencode({**params, **more})


async def _filters(context: Services, user_id: int, status: str | None, integration: str | None) -> Filters:
    problems: list[str] = []
    wanted_status = (status or "").strip().upper() or None
    if wanted_status is not None and wanted_status not in STATUSES:
        problems.append(f"There is no delivery status “{status}”, so the log is shown with every status.")
        wanted_status = None
    wanted_integration: int | None = None
    text = (integration or "").strip()
    if text:
        number = int(text) if text.isdigit() and len(text) <= 19 else None
        found = await integrations.get_owned(context.pool, user_id, number) if number and number <= MAX_ID else None
        if found is None:
            problems.append(
                f"You have no integration #{text} (it may have been deleted), "
                "so the log is shown for every integration."
            )
        else:
            wanted_integration = found.id
    return Filters(status=wanted_status, integration=wanted_integration, problems=problems)


@router.get("/notifications")
async def notifications_page(
    request: Request,
    visit: Visitor,
    context: Context,
    status: Annotated[str | None, Query(max_length=20)] = None,
    integration: Annotated[str | None, Query(max_length=24)] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> HTMLResponse:
    user_id = visit.user.id
    filters = await _filters(context, user_id, status, integration)
    found = await notification_log.page_for_user(
        context.pool,
        user_id,
        status=filters.status,
        integration_id=filters.integration,
        since=None,
        before_id=before,
        limit=PAGE_SIZE + 1,
    )
    entries = found[:PAGE_SIZE]
    older = filters.query(before=entries[-1].id) if len(found) > PAGE_SIZE else None
    named = await monitors.get_many(context.pool, {e.monitor_id for e in entries if e.monitor_id is not None})
    owned = await integrations.page_for_owner(context.pool, user_id, before_id=None, limit=MAX_INTEGRATIONS)
    names = {i.id: name_of(context.registry, i) for i in owned}
    rows = [
        LogRow(
            entry=e,
            kind=e.event_type.removeprefix("website.").removeprefix("incident."),
            integration=names.get(e.integration_id)
            or f"{context.registry.title(e.integration_type)} #{e.integration_id}",
            monitor=m if (m := named.get(e.monitor_id or 0)) is not None and m.owner_id == user_id else None,
        )
        for e in entries
    ]
    return render(
        request,
        "notifications.html",
        rows=rows,
        filters=filters,
        statuses=STATUSES,
        older=older,
        newest=filters.query() if before is not None else None,
        error_shown=ERROR_SHOWN,
        integrations=[(i.id, names[i.id]) for i in owned],
        notice=visit.notice,
    )
