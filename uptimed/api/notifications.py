"""``/api/v1/notifications``: the caller's delivery log, newest first."""

from __future__ import annotations

import uuid
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
from uptimed.store import MAX_ID, notification_log
from uptimed.store.notification_log import DeliveryStatus, LogEntry

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"], responses={**MALFORMED, **UNAUTHORIZED})


class NotificationOut(BaseModel):
    """One event delivered (or being delivered) through one integration."""

    id: int
    event_id: uuid.UUID
    event_type: str = Field(
        description="website.down, website.up, website.slow, incident.escalated or incident.acknowledged"
    )
    integration_id: int
    integration_type: str
    monitor_id: int | None
    status: DeliveryStatus
    attempts: int
    error: str | None = Field(description="the last attempt's error, if it failed")
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None = Field(description="when the next attempt is due (PENDING, RETRYING)")


def out(entry: LogEntry) -> NotificationOut:
    return NotificationOut(
        id=entry.id,
        event_id=entry.event_id,
        event_type=entry.event_type,
        integration_id=entry.integration_id,
        integration_type=entry.integration_type,
        monitor_id=entry.monitor_id,
        status=entry.status,
        attempts=entry.attempts,
        error=entry.error_message,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
        sent_at=entry.sent_at,
        next_attempt_at=entry.next_attempt_at if entry.status in ("PENDING", "RETRYING") else None,
    )


@router.get(
    "",
    response_model=list[NotificationOut],
    responses={**INVALID, 200: {"description": "newest first", "headers": pagination.HEADERS_DOC}},
    summary="The delivery log, newest first",
)
async def list_notifications(
    request: Request,
    response: Response,
    user: Caller,
    context: Context,
    status: Annotated[DeliveryStatus | None, Query(description="only entries in this state")] = None,
    integration: Annotated[int | None, Query(ge=1, le=MAX_ID, description="only this integration's entries")] = None,
    since: SinceQuery = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> list[NotificationOut]:
    before = pagination.decode(cursor, id_position)
    rows = await notification_log.page_for_user(
        context.pool,
        user.id,
        status=status,
        integration_id=integration,
        since=since,
        before_id=before,
        limit=limit + 1,
    )
    return [out(e) for e in pagination.page(rows, limit, request, response, lambda e: {"id": e.id})]


@router.get(
    "/{notification_id}",
    response_model=NotificationOut,
    responses={**NOT_FOUND, **INVALID},
    summary="One entry of the delivery log",
)
async def get_notification(notification_id: IdPath, user: Caller, context: Context) -> NotificationOut:
    entry = await notification_log.get_for_user(context.pool, user.id, notification_id)
    if entry is None:
        raise NotFound("notification")
    return out(entry)
