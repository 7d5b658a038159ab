"""``/api/v1/incidents``: when the caller's monitors were down, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from uptimed.api import pagination
from uptimed.api.auth import Caller
from uptimed.api.bounds import (
    DEFAULT_PAGE,
    CursorQuery,
    IdPath,
    Limit,
    SinceQuery,
)
from uptimed.api.context import Context
from uptimed.api.errors import INVALID, MALFORMED, NOT_FOUND, UNAUTHORIZED
from uptimed.rules.cursors import id_position
from uptimed.rules.errors import NotFound
from uptimed.store import MAX_ID, incidents
from uptimed.store.incidents import IncidentRecord

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], responses={**MALFORMED, **UNAUTHORIZED})


class IncidentOut(BaseModel):
    id: int
    monitor_id: int
    monitor_name: str
    opened_at: datetime
    resolved_at: datetime | None = Field(description="None while the monitor is still down")
    duration_s: float | None = Field(description="how long it lasted, once resolved")
    cause: str


def out(record: IncidentRecord) -> IncidentOut:
    duration = (record.resolved_at - record.opened_at).total_seconds() if record.resolved_at else None
    return IncidentOut(**vars(record), duration_s=duration)


@router.get(
    "",
    response_model=list[IncidentOut],
    responses={**INVALID, 200: {"description": "newest first", "headers": pagination.HEADERS_DOC}},
    summary="Incidents of the caller's monitors, newest first",
)
async def list_incidents(
    request: Request,
    response: Response,
    user: Caller,
    context: Context,
    monitor: Annotated[int | None, Query(ge=1, le=MAX_ID, description="only this monitor's incidents")] = None,
    open: Annotated[bool, Query(description="only incidents not yet resolved")] = False,
    since: SinceQuery = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> list[IncidentOut]:
    before = pagination.decode(cursor, id_position)
    rows = await incidents.page_for_owner(
        context.pool, user.id, monitor_id=monitor, open_only=open, since=since, before_id=before, limit=limit + 1
    )
    return [out(r) for r in pagination.page(rows, limit, request, response, lambda r: {"id": r.id})]


@router.get("/{incident_id}", response_model=IncidentOut, responses={**NOT_FOUND, **INVALID}, summary="One incident")
async def get_incident(incident_id: IdPath, user: Caller, context: Context) -> IncidentOut:
    record = await incidents.get_for_owner(context.pool, user.id, incident_id)
    if record is None:
        raise NotFound("incident")
    return out(record)
