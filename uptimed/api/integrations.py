"""``/api/v1/integrations``: the original design's paths and shapes, scoped to the caller.

Shapes (camelCase, as the original API had them): an integration is
``{id, userId, type, config, enabled, createdAt, updatedAt}`` plus ``name``
(given, or its type and destination: "Webhook to ops.example"), ``lastDelivery``
and ``managedByConfig`` (declared in the config file, so read-only here: 409);
toggling answers ``{id, enabled}``, deleting ``{"success": true}``.
``config`` is validated by the channel's own model and answered with every
secret masked (``"…cdef"``). A PUT that leaves a secret out, or sends back
its masked form, keeps the stored one (:mod:`uptimed.rules.integrations`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from uptimed.api import pagination
from uptimed.api.auth import Caller
from uptimed.api.bounds import MAX_PAGE, CursorQuery, IdPath, Limit
from uptimed.api.context import ApiContext, Context
from uptimed.api.errors import CONFLICT, INVALID, MALFORMED, NOT_FOUND, QUOTA, RATE_LIMITED, TOO_LARGE, UNAUTHORIZED
from uptimed.channels.registry import ChannelRegistry
from uptimed.rules import admission, owned
from uptimed.rules.cursors import id_position
from uptimed.rules.integrations import checked_name, default_name, keep_secrets, masked, name_of, send_test, validated
from uptimed.store import integrations
from uptimed.store.integrations import Integration, LastDeliveries

log = structlog.get_logger()

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"], responses={**MALFORMED, **UNAUTHORIZED})


class IntegrationCreate(BaseModel):
    """A new integration: a channel type and its config."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(min_length=1, max_length=64, description="a channel name from GET /api/v1/channels")
    name: str | None = Field(
        None, max_length=200, description="what the pages and the log call it; default: its type and destination"
    )
    config: dict[str, Any] = Field(description="validated by the channel's own model (see its schema)")
    enabled: bool = True


class IntegrationUpdate(BaseModel):
    """A new config for an integration; secrets left out keep their stored values."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, max_length=200, description="a new name; left out, the name stays")
    config: dict[str, Any]


class DeliverySummary(BaseModel):
    """How the integration's recent deliveries went."""

    status: str = Field(description="the newest delivery's status: SENT, RETRYING, FAILED or PENDING")
    at: datetime
    error: str | None
    recentFailed: int = Field(description="how many of the recentCount newest deliveries failed")
    recentCount: int


class IntegrationOut(BaseModel):
    id: int
    userId: int
    type: str
    name: str = Field(description="as given, or its type and destination")
    config: dict[str, Any] = Field(description="secrets masked as '…' plus their last 4 characters")
    enabled: bool
    managedByConfig: bool = Field(description="declared in the config file: read-only here")
    createdAt: datetime
    updatedAt: datetime
    lastDelivery: DeliverySummary | None = Field(None, description="None before its first delivery")


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


def out(
    registry: ChannelRegistry, integration: Integration, deliveries: LastDeliveries | None = None
) -> IntegrationOut:
    last = None
    if deliveries is not None and deliveries.last_status is not None and deliveries.last_at is not None:
        last = DeliverySummary(
            status=deliveries.last_status,
            at=deliveries.last_at,
            error=deliveries.last_error,
            recentFailed=deliveries.failed,
            recentCount=deliveries.recent,
        )
    return IntegrationOut(
        id=integration.id,
        userId=integration.owner_id,
        type=integration.type,
        name=name_of(registry, integration),
        config=masked(registry, integration),
        enabled=integration.enabled,
        managedByConfig=integration.declared_in_file,
        createdAt=integration.created_at,
        updatedAt=integration.updated_at,
        lastDelivery=last,
    )


async def _out(context: ApiContext, integration: Integration) -> IntegrationOut:
    deliveries = await integrations.recent_deliveries(context.pool, integration.owner_id, only=integration.id)
    return out(context.registry, integration, deliveries.get(integration.id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=IntegrationOut,
    responses={**INVALID, **TOO_LARGE, **QUOTA},
    summary="Create an integration",
)
async def create_integration(body: IntegrationCreate, user: Caller, context: Context) -> IntegrationOut:
    config = await admission.integration_config(context, validated(context.registry, body.type, body.config))
    name = checked_name(body.name) or default_name(context.registry, body.type, config)
    integration = await admission.create_integration(
        context, user.id, body.type, config, name=name, enabled=body.enabled
    )
    return out(context.registry, integration)


@router.get(
    "",
    response_model=list[IntegrationOut],
    responses={
        **INVALID,
        200: {"description": "the caller's integrations, newest first", "headers": pagination.HEADERS_DOC},
    },
    summary="List integrations, newest first",
)
async def list_integrations(
    request: Request,
    response: Response,
    user: Caller,
    context: Context,
    limit: Limit = MAX_PAGE,
    cursor: CursorQuery = None,
) -> list[IntegrationOut]:
    # The original answered every integration at once: the default page is the largest.
    before = pagination.decode(cursor, id_position)
    rows = await integrations.page_for_owner(context.pool, user.id, before_id=before, limit=limit + 1)
    shown = pagination.page(rows, limit, request, response, lambda i: {"id": i.id})
    deliveries = await integrations.recent_deliveries(context.pool, user.id)
    return [out(context.registry, i, deliveries.get(i.id)) for i in shown]


@router.get(
    "/{integration_id}", response_model=IntegrationOut, responses={**NOT_FOUND, **INVALID}, summary="Get an integration"
)
async def get_integration(integration_id: IdPath, user: Caller, context: Context) -> IntegrationOut:
    return await _out(context, await owned.integration(context.pool, user.id, integration_id))


@router.put(
    "/{integration_id}",
    response_model=IntegrationOut,
    responses={**NOT_FOUND, **CONFLICT, **INVALID, **TOO_LARGE},
    summary="Replace an integration's config",
)
async def update_integration(
    integration_id: IdPath, body: IntegrationUpdate, user: Caller, context: Context
) -> IntegrationOut:
    integration = await owned.integration(context.pool, user.id, integration_id, to_change=True)
    config = validated(context.registry, integration.type, keep_secrets(context.registry, integration, body.config))
    name = checked_name(body.name)
    await admission.integration_config(context, config)
    return await _out(context, await owned.update_integration(context.pool, integration, config, name=name))


@router.patch(
    "/{integration_id}/toggle",
    response_model=Toggled,
    responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Enable or disable an integration",
)
async def toggle_integration(integration_id: IdPath, user: Caller, context: Context) -> Toggled:
    integration = await owned.integration(context.pool, user.id, integration_id, to_change=True)
    toggled = await owned.toggle(context.pool, integration)
    return Toggled(id=toggled.id, enabled=toggled.enabled)


@router.delete(
    "/{integration_id}",
    response_model=Deleted,
    responses={**NOT_FOUND, **CONFLICT, **INVALID},
    summary="Delete an integration",
)
async def delete_integration(integration_id: IdPath, user: Caller, context: Context) -> Deleted:
    await owned.delete(context.pool, await owned.integration(context.pool, user.id, integration_id, to_change=True))
    return Deleted()


@router.post(
    "/{integration_id}/test",
    response_model=Outcome,
    responses={**NOT_FOUND, **INVALID, **RATE_LIMITED},
    summary="Send a test notification through the channel now",
    description="Answers 200 whatever the outcome; `status` says whether the channel accepted it.",
)
async def test_integration(integration_id: IdPath, user: Caller, context: Context) -> Outcome:
    integration = await owned.integration(context.pool, user.id, integration_id)
    result = await send_test(context, user.id, integration)
    log.info(
        "integration.tested",
        integration_id=integration.id,
        channel=integration.type,
        status=result.status,
        user_id=user.id,
    )
    return Outcome(**vars(result))
