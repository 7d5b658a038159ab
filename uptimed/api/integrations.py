"""``/api/v1/integrations``: the original design's paths and shapes, scoped to the caller.

Shapes (camelCase, as the original API had them): an integration is
``{id, userId, type, config, enabled, createdAt, updatedAt}`` plus
``managedByConfig``; toggling answers ``{id, enabled}``, deleting
``{"success": true}``. ``config`` is validated by the channel's own model and
answered with every secret masked (``"…cdef"``). A PUT that leaves a secret
out, or sends back its masked form, keeps the stored one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import anyio
import structlog
from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from uptimed.api import pagination
from uptimed.api.auth import Caller
from uptimed.api.bounds import MAX_PAGE, CursorQuery, IdPath, Limit
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
from uptimed.bus.messages import EventType, MonitorEvent
from uptimed.channels.base import DeliveryError, Notification, NotificationKind
from uptimed.channels.registry import (
    ChannelRegistry,
    InvalidConfigError,
    UnknownChannelError,
    redact_secret,
    redacted_config,
    storable_config,
)
from uptimed.store import integrations
from uptimed.store.integrations import Integration
from uptimed.store.users import User

log = structlog.get_logger()

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"], responses={**MALFORMED, **UNAUTHORIZED})


class IntegrationCreate(BaseModel):
    """A new integration: a channel type and its config."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(min_length=1, max_length=64, description="a channel name from GET /api/v1/channels")
    config: dict[str, Any] = Field(description="validated by the channel's own model (see its schema)")
    enabled: bool = True


class IntegrationUpdate(BaseModel):
    """A new config for an integration; secrets left out keep their stored values."""

    model_config = ConfigDict(extra="ignore")

    config: dict[str, Any]


class IntegrationOut(BaseModel):
    id: int
    userId: int
    type: str
    config: dict[str, Any] = Field(description="secrets masked as '…' plus their last 4 characters")
    enabled: bool
    managedByConfig: bool = Field(description="declared in the config file: read-only here")
    createdAt: datetime
    updatedAt: datetime


class Toggled(BaseModel):
    id: int
    enabled: bool


class Deleted(BaseModel):
    success: Literal[True] = True


class Outcome(BaseModel):
    """What happened to the test notification."""

    status: Literal["sent", "failed"]
    error: str | None = Field(None, description="why it failed, when it did")
    retryable: bool | None = Field(None, description="whether the same failure could pass later")


def masked(registry: ChannelRegistry, integration: Integration) -> dict[str, Any]:
    """The stored config with its secrets masked; every string masked when the channel cannot read it."""
    try:
        return redacted_config(registry.validate_config(integration.type, integration.config))
    except (UnknownChannelError, InvalidConfigError):
        return _mask_all(integration.config)


def _mask_all(value: Any) -> Any:
    if isinstance(value, str):
        return redact_secret(value)
    if isinstance(value, dict):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(v) for v in value]
    return value


def out(registry: ChannelRegistry, integration: Integration) -> IntegrationOut:
    return IntegrationOut(
        id=integration.id,
        userId=integration.owner_id,
        type=integration.type,
        config=masked(registry, integration),
        enabled=integration.enabled,
        managedByConfig=integration.config_key is not None,
        createdAt=integration.created_at,
        updatedAt=integration.updated_at,
    )


def validated(registry: ChannelRegistry, type_: str, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` checked by the channel's model, as JSON to store; 422 naming the type or each bad field."""
    try:
        return storable_config(registry.validate_config(type_, raw))
    except UnknownChannelError as exc:
        raise InvalidInput(
            [field_problem(("body", "type"), str(exc), "unknown_channel")], available=exc.available
        ) from None
    except InvalidConfigError as exc:
        raise InvalidInput(
            [
                field_problem(
                    ("body", "config", *(int(p) if p.isdigit() else p for p in e["loc"].split(".") if p)),
                    e["msg"],
                    e["type"],
                )
                for e in exc.errors
            ]
        ) from None


def keep_secrets(registry: ChannelRegistry, integration: Integration, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with each secret it leaves out, or sends back masked, taken from the stored config."""
    try:
        secret_names = [f.name for f in registry.config_fields(integration.type) if f.secret]
    except UnknownChannelError:
        return new
    merged = dict(new)
    for name in secret_names:
        stored = integration.config.get(name)
        if stored is None:
            continue
        merged[name] = _unmask(merged[name], stored) if name in merged else stored
    return merged


def _unmask(new: Any, stored: Any) -> Any:
    if isinstance(new, str) and isinstance(stored, str) and new == redact_secret(stored):
        return stored
    if isinstance(new, dict) and isinstance(stored, dict):
        return {k: _unmask(v, stored[k]) if k in stored else v for k, v in new.items()}
    return new


async def owned(context: ApiContext, user: User, integration_id: int) -> Integration:
    integration = await integrations.get_owned(context.pool, user.id, integration_id)
    if integration is None:
        raise NotFound("integration")
    return integration


async def changeable(context: ApiContext, user: User, integration_id: int) -> Integration:
    integration = await owned(context, user, integration_id)
    if integration.config_key is not None:
        raise ManagedByConfig("integration")
    return integration


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=IntegrationOut, responses={**INVALID, **TOO_LARGE},
    summary="Create an integration",
)
async def create_integration(body: IntegrationCreate, user: Caller, context: Context) -> IntegrationOut:
    config = validated(context.registry, body.type, body.config)
    integration = await integrations.create(context.pool, user.id, body.type, config, enabled=body.enabled)
    log.info("integration.created", integration_id=integration.id, channel=integration.type, user_id=user.id)
    return out(context.registry, integration)


@router.get(
    "", response_model=list[IntegrationOut],
    responses={**INVALID, 200: {"description": "the caller's integrations, newest first", "headers": pagination.HEADERS_DOC}},
    summary="List integrations, newest first",
)
async def list_integrations(
    request: Request, response: Response, user: Caller, context: Context,
    limit: Limit = MAX_PAGE, cursor: CursorQuery = None,
) -> list[IntegrationOut]:
    # The original answered every integration at once: the default page is the largest.
    before = pagination.decode(cursor, pagination.id_position)
    rows = await integrations.page_for_owner(context.pool, user.id, before_id=before, limit=limit + 1)
    shown = pagination.page(rows, limit, request, response, lambda i: {"id": i.id})
    return [out(context.registry, i) for i in shown]


@router.get("/{integration_id}", response_model=IntegrationOut, responses={**NOT_FOUND, **INVALID}, summary="Get an integration")
async def get_integration(integration_id: IdPath, user: Caller, context: Context) -> IntegrationOut:
    return out(context.registry, await owned(context, user, integration_id))


@router.put(
    "/{integration_id}", response_model=IntegrationOut, responses={**NOT_FOUND, **CONFLICT, **INVALID, **TOO_LARGE},
    summary="Replace an integration's config",
)
async def update_integration(
    integration_id: IdPath, body: IntegrationUpdate, user: Caller, context: Context
) -> IntegrationOut:
    integration = await changeable(context, user, integration_id)
    config = validated(context.registry, integration.type, keep_secrets(context.registry, integration, body.config))
    updated = await integrations.update_config(context.pool, user.id, integration_id, config)
    if updated is None:
        raise NotFound("integration")
    log.info("integration.updated", integration_id=integration_id, channel=updated.type, user_id=user.id)
    return out(context.registry, updated)


@router.patch(
    "/{integration_id}/toggle", response_model=Toggled, responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Enable or disable an integration",
)
async def toggle_integration(integration_id: IdPath, user: Caller, context: Context) -> Toggled:
    await changeable(context, user, integration_id)
    toggled = await integrations.toggle(context.pool, user.id, integration_id)
    if toggled is None:
        raise NotFound("integration")
    log.info("integration.toggled", integration_id=integration_id, enabled=toggled.enabled, user_id=user.id)
    return Toggled(id=toggled.id, enabled=toggled.enabled)


@router.delete(
    "/{integration_id}", response_model=Deleted, responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Delete an integration",
)
async def delete_integration(integration_id: IdPath, user: Caller, context: Context) -> Deleted:
    await changeable(context, user, integration_id)
    if not await integrations.delete_owned(context.pool, user.id, integration_id):
        raise NotFound("integration")
    log.info("integration.deleted", integration_id=integration_id, user_id=user.id)
    return Deleted()


@router.post(
    "/{integration_id}/test", response_model=Outcome, responses={**NOT_FOUND, **INVALID},
    summary="Send a test notification through the channel now",
    description="Answers 200 whatever the outcome; `status` says whether the channel accepted it.",
)
async def test_integration(integration_id: IdPath, user: Caller, context: Context) -> Outcome:
    integration = await owned(context, user, integration_id)
    result = await send_test(context, user, integration)
    log.info(
        "integration.tested", integration_id=integration.id, channel=integration.type, status=result.status,
        user_id=user.id,
    )
    return result


async def send_test(context: ApiContext, user: User, integration: Integration) -> Outcome:
    """Deliver a synthetic event through ``integration``'s channel, with the dispatcher's timeout."""
    try:
        channel = context.registry.get(integration.type)
        config = context.registry.validate_config(integration.type, integration.config)
    except (UnknownChannelError, InvalidConfigError) as exc:
        return Outcome(status="failed", error=str(exc), retryable=False)
    event = MonitorEvent(
        type=EventType.DOWN,
        websiteId=0,
        userId=user.id,
        url="https://example.com/",
        name="uptimed test notification",
        reason="a test sent from uptimed; nothing is down",
    )
    notification = Notification(
        kind=NotificationKind.TEST, event=event, config=config, http=context.http, smtp=context.settings.smtp,
        integration_id=integration.id,
    )
    timeout = context.settings.notify.delivery_timeout
    try:
        with anyio.fail_after(timeout):
            await channel.send(notification)
    except DeliveryError as exc:
        return Outcome(status="failed", error=exc.message, retryable=exc.retryable)
    except TimeoutError:
        return Outcome(status="failed", error=f"timed out after {timeout:g} s", retryable=True)
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is this test's failure, not the API's
        return Outcome(status="failed", error=f"{type(exc).__name__} in channel {integration.type!r}", retryable=False)
    return Outcome(status="sent")
