"""``/api/v1/monitors``: the caller's monitors, their status and uptime, and their checks.

A monitor is written with the same fields (and the same validation) as a
``[[monitors]]`` table of the config file. Monitors declared in that file
are read-only here: changing one answers 409.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import time

import structlog
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from uptimed.api import pagination
from uptimed.api.auth import Caller
from uptimed.api.bounds import (
    DEFAULT_PAGE,
    CursorQuery,
    IdPath,
    Instant,
    Limit,
    as_instant,
)
from uptimed.api.context import ApiContext, Context
from uptimed.api.errors import (
    CONFLICT,
    INVALID,
    MALFORMED,
    NOT_FOUND,
    TOO_LARGE,
    UNAUTHORIZED,
    InvalidInput,
    ManagedByConfig,
    NotFound,
    field_problem,
)
from uptimed.api.integrations import Deleted, Toggled
from uptimed.evaluate.state import DEFAULT_SILENCE_INTERVALS, MonitorState, MonitorStatus, silence_ms_for
from uptimed.monitor import Monitor, MonitorFields
from uptimed.store import checks, monitors
from uptimed.store.checks import StoredCheck
from uptimed.store.monitors import MonitorOverview
from uptimed.store.users import User

log = structlog.get_logger()

router = APIRouter(prefix="/api/v1/monitors", tags=["monitors"], responses={**MALFORMED, **UNAUTHORIZED})

MAX_REPEAT_INTERVAL_S = 30 * 86400.0


class MonitorOut(MonitorFields):
    """A monitor with its current status and uptime."""

    id: int
    managed_by_config: bool = Field(description="declared in the config file: read-only here")
    created_at: datetime
    updated_at: datetime
    status: Literal["up", "down", "unknown", "paused"] = Field(
        description="the evaluator's verdict; 'paused' when disabled, 'unknown' before enough checks"
    )
    slow: bool = Field(description="up, but slower than slow_threshold_ms")
    silent_regions: list[str] = Field(
        default_factory=list,
        description="regions that stopped reporting for this monitor: its quorum is taken over the others",
    )
    down_since: datetime | None = None
    last_checked_at: datetime | None = None
    last_response_time_ms: float | None = None
    uptime_24h: float | None = Field(None, description="percent of checks up in the last 24 hours")
    uptime_7d: float | None = Field(None, description="percent of checks up in the last 7 days")
    uptime_30d: float | None = Field(None, description="percent of checks up in the last 30 days")


class CheckOut(BaseModel):
    region: str
    checked_at: datetime
    status: Literal["up", "down"]
    response_time_ms: float | None
    status_code: int | None
    error_class: str | None
    error: str | None


def _fields(monitor: Monitor) -> dict[str, Any]:
    return monitor.model_dump(include=set(MonitorFields.model_fields))


def _state(raw: Any) -> MonitorState:
    try:
        return MonitorState.from_json(raw)
    except (ValueError, TypeError):
        return MonitorState()


def out(overview: MonitorOverview, *, silence_intervals: float = DEFAULT_SILENCE_INTERVALS) -> MonitorOut:
    monitor = overview.monitor
    state = _state(overview.state)
    shown = "paused" if not monitor.enabled else state.status.value
    newest = state.newest_result_ms
    if shown == "up" and newest is not None and time.time() * 1000 - newest > silence_ms_for(monitor, silence_intervals):
        shown = "unknown"  # every region is silent: it was up, nobody knows what it is now
    down_since = state.down_since_ms if state.status is MonitorStatus.DOWN else None
    return MonitorOut(
        **_fields(monitor),
        id=monitor.id,
        managed_by_config=monitor.config_key is not None,
        created_at=overview.created_at,
        updated_at=overview.updated_at,
        status=shown,
        slow=shown == "up" and state.slow,
        silent_regions=list(state.silent) if monitor.enabled else [],
        down_since=datetime.fromtimestamp(down_since / 1000, tz=UTC) if down_since else None,
        last_checked_at=overview.last_checked_at,
        last_response_time_ms=overview.last_response_time_ms,
        uptime_24h=overview.uptime_24h,
        uptime_7d=overview.uptime_7d,
        uptime_30d=overview.uptime_30d,
    )


def checked(context: ApiContext, fields: MonitorFields) -> MonitorFields:
    """What the config file would refuse too: unknown regions, a quorum larger than the regions."""
    configured = context.settings.probe.all_regions
    unknown = [r for r in fields.regions if r not in configured]
    if unknown:
        raise InvalidInput(
            [field_problem(("body", "regions"), f"unknown region {unknown[0]!r}; configured: {', '.join(configured)}")]
        )
    regions = fields.effective_regions(configured)
    if fields.quorum is not None and fields.quorum > len(regions):
        raise InvalidInput(
            [field_problem(("body", "quorum"), f"quorum {fields.quorum} is more than its {len(regions)} regions")]
        )
    if fields.repeat_interval is not None and fields.repeat_interval > MAX_REPEAT_INTERVAL_S:
        raise InvalidInput([field_problem(("body", "repeat_interval"), "must be at most 30 days")])
    return fields


async def _overview(context: ApiContext, user: User, monitor_id: int) -> MonitorOut:
    overview = await monitors.get_overview(context.pool, user.id, monitor_id)
    if overview is None:
        raise NotFound("monitor")
    return out(overview, silence_intervals=context.settings.evaluate.region_silence)


async def changeable(context: ApiContext, user: User, monitor_id: int) -> Monitor:
    monitor = await monitors.get_owned(context.pool, user.id, monitor_id)
    if monitor is None:
        raise NotFound("monitor")
    if monitor.config_key is not None:
        raise ManagedByConfig("monitor")
    return monitor


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=MonitorOut, responses={**INVALID, **TOO_LARGE},
    summary="Create a monitor",
)
async def create_monitor(body: MonitorFields, user: Caller, context: Context) -> MonitorOut:
    monitor = await monitors.create(context.pool, user.id, checked(context, body))
    log.info("monitor.created", monitor_id=monitor.id, user_id=user.id)
    return await _overview(context, user, monitor.id)


@router.get(
    "", response_model=list[MonitorOut],
    responses={**INVALID, 200: {"description": "the caller's monitors in creation order", "headers": pagination.HEADERS_DOC}},
    summary="List monitors with status, last response time and uptime",
)
async def list_monitors(
    request: Request, response: Response, user: Caller, context: Context,
    limit: Limit = DEFAULT_PAGE, cursor: CursorQuery = None,
) -> list[MonitorOut]:
    after = pagination.decode(cursor, pagination.id_position)
    rows = await monitors.page_overviews(context.pool, user.id, after_id=after, limit=limit + 1)
    silence = context.settings.evaluate.region_silence
    return [
        out(o, silence_intervals=silence)
        for o in pagination.page(rows, limit, request, response, lambda o: {"id": o.monitor.id})
    ]


@router.get("/{monitor_id}", response_model=MonitorOut, responses={**NOT_FOUND, **INVALID}, summary="Get a monitor")
async def get_monitor(monitor_id: IdPath, user: Caller, context: Context) -> MonitorOut:
    return await _overview(context, user, monitor_id)


@router.put(
    "/{monitor_id}", response_model=MonitorOut, responses={**NOT_FOUND, **CONFLICT, **INVALID, **TOO_LARGE},
    summary="Replace a monitor's fields",
)
async def update_monitor(monitor_id: IdPath, body: MonitorFields, user: Caller, context: Context) -> MonitorOut:
    await changeable(context, user, monitor_id)
    if await monitors.update_owned(context.pool, user.id, monitor_id, checked(context, body)) is None:
        raise NotFound("monitor")
    log.info("monitor.updated", monitor_id=monitor_id, user_id=user.id)
    return await _overview(context, user, monitor_id)


@router.patch(
    "/{monitor_id}/toggle", response_model=Toggled, responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Pause or resume a monitor",
)
async def toggle_monitor(monitor_id: IdPath, user: Caller, context: Context) -> Toggled:
    await changeable(context, user, monitor_id)
    toggled = await monitors.toggle_owned(context.pool, user.id, monitor_id)
    if toggled is None:
        raise NotFound("monitor")
    log.info("monitor.toggled", monitor_id=monitor_id, enabled=toggled.enabled, user_id=user.id)
    return Toggled(id=toggled.id, enabled=toggled.enabled)


@router.delete(
    "/{monitor_id}", response_model=Deleted, responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Delete a monitor with its checks and incidents",
)
async def delete_monitor(monitor_id: IdPath, user: Caller, context: Context) -> Deleted:
    await changeable(context, user, monitor_id)
    if not await monitors.delete_owned(context.pool, user.id, monitor_id):
        raise NotFound("monitor")
    log.info("monitor.deleted", monitor_id=monitor_id, user_id=user.id)
    return Deleted()


def check_position(data: dict[str, Any]) -> tuple[datetime, str]:
    at, region = data["t"], data["r"]
    if not isinstance(at, str) or not isinstance(region, str) or len(region) > 64:
        raise ValueError("bad position")
    parsed = datetime.fromisoformat(at)
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    return as_instant(parsed), region


@router.get(
    "/{monitor_id}/checks", response_model=list[CheckOut],
    responses={**NOT_FOUND, **INVALID, 200: {"description": "checks, newest first", "headers": pagination.HEADERS_DOC}},
    summary="A monitor's checks, newest first",
)
async def list_checks(
    request: Request, response: Response, monitor_id: IdPath, user: Caller, context: Context,
    since: Annotated[Instant | None, Query(description="checks at or after this time (ISO 8601)")] = None,
    until: Annotated[Instant | None, Query(description="checks before this time (ISO 8601)")] = None,
    region: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> list[CheckOut]:
    if since is not None and until is not None and until <= since:
        raise InvalidInput([field_problem(("query", "until"), "must be later than since")])
    before = pagination.decode(cursor, check_position)
    if await monitors.get_owned(context.pool, user.id, monitor_id) is None:
        raise NotFound("monitor")
    rows = await checks.page_for_owner(
        context.pool, user.id, monitor_id, since=since, until=until, region=region, before=before, limit=limit + 1
    )

    def position(row: StoredCheck) -> dict[str, Any]:
        return {"t": row.checked_at.isoformat(), "r": row.region}

    return [CheckOut(**vars(c)) for c in pagination.page(rows, limit, request, response, position)]
