"""``/api/v1/maintenance``: the caller's maintenance windows.

A window has the fields of a ``[[maintenance]]`` table of the config file
(:mod:`uptimed.maintenance`), with monitors by id (``monitor_ids``) instead
of by key. During a window checks run and are stored, but no alert goes out;
a monitor still down at its end is alerted then, once. Windows declared in
the config file are read-only here (409).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from uptimed.api.auth import Caller
from uptimed.api.bounds import IdPath
from uptimed.api.context import Context
from uptimed.api.errors import CONFLICT, INVALID, MALFORMED, NOT_FOUND, TOO_LARGE, UNAUTHORIZED
from uptimed.api.integrations import Deleted
from uptimed.maintenance import MaintenanceIn, MaintenanceWindow
from uptimed.rules import maintenance as rules
from uptimed.store import maintenance

router = APIRouter(prefix="/api/v1/maintenance", tags=["maintenance"], responses={**MALFORMED, **UNAUTHORIZED})


class Occurrence(BaseModel):
    start: datetime
    end: datetime


class MaintenanceOut(MaintenanceIn):
    """A window, when it is on next, and whether it is on now."""

    id: int
    managed_by_config: bool = Field(description="declared in the config file: read-only here (409)")
    described: str = Field(description="when it is on, in words")
    ongoing: Occurrence | None = Field(None, description="the occurrence on now")
    next: Occurrence | None = Field(None, description="the next occurrence to start")


def out(window: MaintenanceWindow) -> MaintenanceOut:
    now = datetime.now(UTC)
    schedule = window.schedule
    on = schedule.covering(now)
    following = schedule.next_after(now)
    return MaintenanceOut(
        **window.model_dump(include=set(MaintenanceIn.model_fields)),
        id=window.id,
        managed_by_config=window.declared_in_file,
        described=window.describe(),
        ongoing=Occurrence(start=on.start, end=on.end) if on else None,
        next=Occurrence(start=following.start, end=following.end) if following else None,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MaintenanceOut,
    responses={**INVALID, **TOO_LARGE},
    summary="Plan a maintenance window",
)
async def create_window(body: MaintenanceIn, user: Caller, context: Context) -> MaintenanceOut:
    return out(await rules.create(context.pool, user.id, body))


@router.get("", response_model=list[MaintenanceOut], summary="The caller's maintenance windows, oldest first")
async def list_windows(user: Caller, context: Context) -> list[MaintenanceOut]:
    return [out(w) for w in await maintenance.for_owner(context.pool, user.id)]


@router.get(
    "/{window_id}", response_model=MaintenanceOut, responses={**NOT_FOUND, **INVALID}, summary="A maintenance window"
)
async def get_window(window_id: IdPath, user: Caller, context: Context) -> MaintenanceOut:
    return out(await rules.window(context.pool, user.id, window_id))


@router.put(
    "/{window_id}",
    response_model=MaintenanceOut,
    responses={**NOT_FOUND, **CONFLICT, **INVALID, **TOO_LARGE},
    summary="Replace a maintenance window's fields",
)
async def update_window(window_id: IdPath, body: MaintenanceIn, user: Caller, context: Context) -> MaintenanceOut:
    window = await rules.window(context.pool, user.id, window_id, to_change=True)
    return out(await rules.update(context.pool, window, body))


@router.delete(
    "/{window_id}",
    response_model=Deleted,
    responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Delete a maintenance window",
)
async def delete_window(window_id: IdPath, user: Caller, context: Context) -> Deleted:
    await rules.delete(context.pool, await rules.window(context.pool, user.id, window_id, to_change=True))
    return Deleted()
