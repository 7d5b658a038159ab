"""``/api/v1/monitors``: the caller's monitors, their status and uptime, and their checks.

A monitor is written with the same fields (and the same validation) as a
``[[monitors]]`` table of the config file, checked by the same rules
(:mod:`uptimed.rules.monitors`), plus ``integrations``: which of the
caller's integrations it notifies (null: all of them; the config file says
the same from the integrations' side, ``monitors = [...]``). Monitors
declared in that file are read-only here: changing one answers 409.
The list filters by ``tag``, ``status`` and ``q`` (part of the name or the
target), as the dashboard does.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from uptimed.api import pagination
from uptimed.api.auth import Caller
from uptimed.api.bounds import DEFAULT_PAGE, CursorQuery, IdPath, Instant, Limit
from uptimed.api.context import ApiContext, Context
from uptimed.api.errors import (
    CONFLICT,
    INVALID,
    MALFORMED,
    NOT_FOUND,
    QUOTA,
    TOO_LARGE,
    UNAUTHORIZED,
    InvalidInput,
    field_problem,
)
from uptimed.api.integrations import Deleted, Toggled
from uptimed.monitor import MonitorFields
from uptimed.rules import admission, badges, owned
from uptimed.rules import status as monitor_status
from uptimed.rules.credentials import keep_credentials, masked_headers, masked_target
from uptimed.rules.cursors import check_position, id_position
from uptimed.rules.errors import NotFound
from uptimed.rules.kinds import keep_secrets
from uptimed.rules.status import MonitorView
from uptimed.store import checks
from uptimed.store.checks import StoredCheck
from uptimed.store.monitors import Filter

router = APIRouter(prefix="/api/v1/monitors", tags=["monitors"], responses={**MALFORMED, **UNAUTHORIZED})


class MonitorIn(MonitorFields):
    """A monitor's fields and the integrations it notifies."""

    integrations: list[int] | None = Field(
        None, max_length=1000, description="ids of the integrations it notifies; null (the default): all of them"
    )


class MaintenanceNow(BaseModel):
    """The maintenance window on for a monitor: its alerts are held until it ends."""

    window_id: int
    name: str
    until: datetime


class MonitorOut(MonitorIn):
    """A monitor with its current status and uptime; its kind's secrets masked as '…' plus their last 4 characters."""

    _strict: ClassVar[bool] = False  # a monitor of a kind whose plugin is gone is still shown

    id: int
    managed_by_config: bool = Field(description="declared in the config file: read-only here (409)")
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
    uptime_24h: float | None = Field(
        None, description="percent of checks up in the last 24 hours, maintenance left out"
    )
    uptime_7d: float | None = Field(None, description="percent of checks up in the last 7 days, maintenance left out")
    uptime_30d: float | None = Field(None, description="percent of checks up in the last 30 days, maintenance left out")
    maintenance: MaintenanceNow | None = Field(
        None, description="the maintenance window on now; uptime leaves maintenance out"
    )
    ping_url: str | None = Field(
        None, description="a heartbeat's ping URL (GET, HEAD or POST; /start, /fail, /<exit status>): keep it secret"
    )


class CheckOut(BaseModel):
    region: str
    checked_at: datetime
    status: Literal["up", "down"]
    response_time_ms: float | None
    status_code: int | None
    error_class: str | None
    error: str | None
    message: str | None = Field(None, description="what the check found besides up or down")


def out(view: MonitorView, base_url: str) -> MonitorOut:
    """``view`` as answered; ``base_url`` (where the caller reached us) starts a heartbeat's ping URL."""
    monitor = view.monitor
    shown = {f.name: getattr(view, f.name) for f in fields(view) if f.name not in ("monitor", "maintenance")}
    planned = view.maintenance
    ping_url = (
        f"{base_url.rstrip('/')}/ping/{monitor.ping_token}" if monitor.ping_token and not monitor.scheduled else None
    )
    data = {
        # Python mode: each kind's options stay models (their secrets too), masked only in the JSON answered.
        **monitor.model_dump(include=set(MonitorFields.model_fields)),
        **monitor.kind_options(),
        **shown,
        "id": monitor.id,
        "integrations": monitor.notify_integrations,
        "managed_by_config": monitor.declared_in_file,
        "ping_url": ping_url,
        "maintenance": MaintenanceNow(
            window_id=planned.window.id, name=planned.window.name, until=planned.occurrence.end
        )
        if planned
        else None,
    }
    # Credentials come back masked, as integrations' secrets do; a PUT that sends them back so keeps them.
    data["target"] = masked_target(monitor.target)
    data["http"]["headers"] = masked_headers(monitor.http.headers)
    return MonitorOut.model_validate(data)


def _fields(body: MonitorIn) -> MonitorFields:
    """The monitor's own fields (its kind's options among them), without the routing."""
    return MonitorFields.model_validate({**body.model_dump(exclude={"integrations"}), **body.kind_options()})


async def _shown(request: Request, context: ApiContext, user_id: int, monitor_id: int) -> MonitorOut:
    silence = context.settings.evaluate.region_silence
    view = await monitor_status.one(context.pool, user_id, monitor_id, silence_intervals=silence)
    return out(view, str(request.base_url))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MonitorOut,
    responses={**INVALID, **TOO_LARGE, **QUOTA},
    summary="Create a monitor",
)
async def create_monitor(request: Request, body: MonitorIn, user: Caller, context: Context) -> MonitorOut:
    fields = await admission.monitor_fields(context, _fields(body))
    monitor = await admission.create_monitor(context, user.id, fields, notify=body.integrations)
    return await _shown(request, context, user.id, monitor.id)


@router.get(
    "",
    response_model=list[MonitorOut],
    responses={
        **INVALID,
        200: {"description": "the caller's monitors in creation order", "headers": pagination.HEADERS_DOC},
    },
    summary="List monitors with status, last response time and uptime",
)
async def list_monitors(
    request: Request,
    response: Response,
    user: Caller,
    context: Context,
    tag: Annotated[str | None, Query(min_length=1, max_length=40, description="only monitors with this tag")] = None,
    status: Annotated[
        Literal["up", "down", "slow", "paused", "unknown"] | None, Query(description="only monitors shown so")
    ] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="only monitors whose name or target holds this")
    ] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> list[MonitorOut]:
    after = pagination.decode(cursor, id_position)
    silence = context.settings.evaluate.region_silence
    only = Filter(tag=tag, status=status, search=q)
    rows = await monitor_status.page(
        context.pool, user.id, after_id=after, limit=limit + 1, silence_intervals=silence, only=only
    )
    base_url = str(request.base_url)
    return [out(v, base_url) for v in pagination.page(rows, limit, request, response, lambda v: {"id": v.monitor.id})]


@router.get("/{monitor_id}", response_model=MonitorOut, responses={**NOT_FOUND, **INVALID}, summary="Get a monitor")
async def get_monitor(request: Request, monitor_id: IdPath, user: Caller, context: Context) -> MonitorOut:
    return await _shown(request, context, user.id, monitor_id)


@router.put(
    "/{monitor_id}",
    response_model=MonitorOut,
    responses={**NOT_FOUND, **CONFLICT, **INVALID, **TOO_LARGE},
    summary="Replace a monitor's fields",
)
async def update_monitor(
    request: Request, monitor_id: IdPath, body: MonitorIn, user: Caller, context: Context
) -> MonitorOut:
    """A kind's secret left out, or sent back masked, keeps its stored value; ``null`` removes it."""
    monitor = await owned.monitor(context.pool, user.id, monitor_id, to_change=True)
    fields = await admission.monitor_fields(context, keep_credentials(monitor, _fields(body)))
    await owned.update_monitor(context.pool, monitor, keep_secrets(monitor, fields), notify=body.integrations)
    return await _shown(request, context, user.id, monitor_id)


@router.patch(
    "/{monitor_id}/toggle",
    response_model=Toggled,
    responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Pause or resume a monitor",
)
async def toggle_monitor(monitor_id: IdPath, user: Caller, context: Context) -> Toggled:
    monitor = await owned.monitor(context.pool, user.id, monitor_id, to_change=True)
    toggled = await owned.toggle(context.pool, monitor)
    return Toggled(id=toggled.id, enabled=toggled.enabled)


@router.delete(
    "/{monitor_id}",
    response_model=Deleted,
    responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Delete a monitor with its checks and incidents",
)
async def delete_monitor(monitor_id: IdPath, user: Caller, context: Context) -> Deleted:
    await owned.delete(context.pool, await owned.monitor(context.pool, user.id, monitor_id, to_change=True))
    return Deleted()


@router.get(
    "/{monitor_id}/checks",
    response_model=list[CheckOut],
    responses={**NOT_FOUND, **INVALID, 200: {"description": "checks, newest first", "headers": pagination.HEADERS_DOC}},
    summary="A monitor's checks, newest first",
)
async def list_checks(
    request: Request,
    response: Response,
    monitor_id: IdPath,
    user: Caller,
    context: Context,
    since: Annotated[Instant | None, Query(description="checks at or after this time (ISO 8601)")] = None,
    until: Annotated[Instant | None, Query(description="checks before this time (ISO 8601)")] = None,
    region: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> list[CheckOut]:
    if since is not None and until is not None and until <= since:
        raise InvalidInput([field_problem(("query", "until"), "must be later than since")])
    before = pagination.decode(cursor, check_position)
    await owned.monitor(context.pool, user.id, monitor_id)
    rows = await checks.page_for_owner(
        context.pool, user.id, monitor_id, since=since, until=until, region=region, before=before, limit=limit + 1
    )

    def position(row: StoredCheck) -> dict[str, Any]:
        return {"t": row.checked_at.isoformat(), "r": row.region}

    return [CheckOut(**vars(c)) for c in pagination.page(rows, limit, request, response, position)]


class Badges(BaseModel):
    """Where the monitor's public badges are: paths on this server, naming a random key only."""

    status: str = Field(description="status.svg: up, down, slow, maintenance, paused or unknown")
    uptime: str = Field(description="uptime.svg; add ?period=24h, 7d or 30d (the default)")
    response: str = Field(description="response.svg: the last response time")


def _badges(key: str) -> Badges:
    return Badges(
        status=f"/badge/{key}/status.svg", uptime=f"/badge/{key}/uptime.svg", response=f"/badge/{key}/response.svg"
    )


@router.put(
    "/{monitor_id}/badges",
    response_model=Badges,
    responses={**NOT_FOUND, **INVALID},
    summary="Publish the monitor's badges (a new key: older addresses stop working)",
)
async def enable_badges(monitor_id: IdPath, user: Caller, context: Context) -> Badges:
    monitor = await badges.enable(context.pool, await owned.monitor(context.pool, user.id, monitor_id))
    return _badges(monitor.badge_key or "")


@router.get(
    "/{monitor_id}/badges",
    response_model=Badges,
    responses={**NOT_FOUND, **INVALID},
    summary="Where the monitor's public badges are (404 when it has none)",
)
async def get_badges(monitor_id: IdPath, user: Caller, context: Context) -> Badges:
    monitor = await owned.monitor(context.pool, user.id, monitor_id)
    if monitor.badge_key is None:
        raise NotFound("badge")
    return _badges(monitor.badge_key)


@router.delete(
    "/{monitor_id}/badges",
    response_model=Deleted,
    responses={**NOT_FOUND, **INVALID},
    summary="Take the monitor's badges down",
)
async def disable_badges(monitor_id: IdPath, user: Caller, context: Context) -> Deleted:
    await badges.disable(context.pool, await owned.monitor(context.pool, user.id, monitor_id))
    return Deleted()
