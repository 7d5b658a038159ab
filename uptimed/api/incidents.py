"""``/api/v1/incidents``: when the caller's monitors were down and why; acknowledging one; its timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from uptimed.api import pagination
from uptimed.api.auth import Caller
from uptimed.api.bounds import (
    DEFAULT_PAGE,
    CursorQuery,
    IdPath,
    Instant,
    Limit,
    SinceQuery,
)
from uptimed.api.context import Context
from uptimed.api.errors import INVALID, MALFORMED, NOT_FOUND, NOT_NOW, UNAUTHORIZED
from uptimed.rules import incidents as incident_rules
from uptimed.rules.cursors import id_position
from uptimed.rules.incidents import Entry
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
    acknowledged: bool = Field(description="someone took it (open incidents; kept once resolved)")
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(None, description="a username, or the integration whose link was used")
    acknowledged_via: Literal["page", "api", "link"] | None = None


def out(record: IncidentRecord) -> IncidentOut:
    duration = (record.resolved_at - record.opened_at).total_seconds() if record.resolved_at else None
    return IncidentOut(
        id=record.id,
        monitor_id=record.monitor_id,
        monitor_name=record.monitor_name,
        opened_at=record.opened_at,
        resolved_at=record.resolved_at,
        duration_s=duration,
        cause=record.cause,
        acknowledged=record.acknowledged_at is not None,
        acknowledged_at=record.acknowledged_at,
        acknowledged_by=record.acknowledged_by,
        acknowledged_via=record.acknowledged_via,  # type: ignore[arg-type]
    )


class EntryOut(BaseModel):
    """One thing that happened to an incident."""

    at: datetime
    kind: Literal["opened", "notified", "escalated", "acknowledged", "unacknowledged", "resolved"]
    text: str = Field(description="what the pages say about it")
    step: int | None = Field(None, description="the escalation step (escalated; a notification that sent one)")
    integration_id: int | None = None
    notification: str | None = Field(None, description="down, reminder, escalation, acknowledged, up")
    outcome: Literal["PENDING", "RETRYING", "SENT", "FAILED"] | None = Field(None, description="of a notification")
    attempts: int | None = None
    error: str | None = None
    actor: str | None = Field(None, description="who acknowledged, or withdrew it")
    via: Literal["page", "api", "link"] | None = None


class TimelineOut(BaseModel):
    incident: IncidentOut
    duration_s: float = Field(description="how long it lasted, or has lasted so far")
    entries: list[EntryOut] = Field(description="oldest first")


def _entry(entry: Entry) -> EntryOut:
    return EntryOut.model_validate({name: getattr(entry, name) for name in EntryOut.model_fields})


Status = Literal["open", "resolved", "acknowledged", "unacknowledged"]


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
    status: Annotated[
        Status | None, Query(description="open, resolved, or open and acknowledged / unacknowledged")
    ] = None,
    since: SinceQuery = None,
    until: Annotated[Instant | None, Query(description="only incidents opened before this time (ISO 8601)")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> list[IncidentOut]:
    before = pagination.decode(cursor, id_position)
    rows = await incidents.page_for_owner(
        context.pool,
        user.id,
        monitor_id=monitor,
        open_only=open,
        status=status,
        since=since,
        until=until,
        before_id=before,
        limit=limit + 1,
    )
    return [out(r) for r in pagination.page(rows, limit, request, response, lambda r: {"id": r.id})]


@router.get("/{incident_id}", response_model=IncidentOut, responses={**NOT_FOUND, **INVALID}, summary="One incident")
async def get_incident(incident_id: IdPath, user: Caller, context: Context) -> IncidentOut:
    return out(await incident_rules.incident(context.pool, user.id, incident_id))


@router.get(
    "/{incident_id}/timeline",
    response_model=TimelineOut,
    responses={**NOT_FOUND, **INVALID},
    summary="What happened to an incident: opened, notifications, escalation steps, acknowledgement, resolution",
)
async def get_timeline(incident_id: IdPath, user: Caller, context: Context) -> TimelineOut:
    found = await incident_rules.timeline(context.pool, context.registry, user.id, incident_id)
    return TimelineOut(
        incident=out(found.incident), duration_s=found.duration_s, entries=[_entry(e) for e in found.entries]
    )


@router.post(
    "/{incident_id}/ack",
    response_model=IncidentOut,
    responses={**NOT_FOUND, **NOT_NOW, **INVALID},
    summary="Acknowledge an open incident: its escalation and reminders stop, everyone notified hears who took it",
)
async def acknowledge(incident_id: IdPath, user: Caller, context: Context) -> IncidentOut:
    found = await incident_rules.incident(context.pool, user.id, incident_id)
    return out(await incident_rules.acknowledge(context.pool, found, by=user.username, via="api"))


@router.post(
    "/{incident_id}/unack",
    response_model=IncidentOut,
    responses={**NOT_FOUND, **NOT_NOW, **INVALID},
    summary="Withdraw an acknowledgement: the incident's escalation and reminders go on",
)
async def unacknowledge(incident_id: IdPath, user: Caller, context: Context) -> IncidentOut:
    found = await incident_rules.incident(context.pool, user.id, incident_id)
    return out(await incident_rules.unacknowledge(context.pool, found, by=user.username, via="api"))
