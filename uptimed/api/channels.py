"""``/api/v1/channels``: the installed channel types and the JSON schema of each one's config."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from uptimed.api.auth import Caller
from uptimed.api.context import Context
from uptimed.api.errors import MALFORMED, UNAUTHORIZED

router = APIRouter(prefix="/api/v1/channels", tags=["channels"], responses={**MALFORMED, **UNAUTHORIZED})


class ConfigFieldOut(BaseModel):
    name: str
    type: str
    required: bool
    secret: bool = Field(description="never answered in clear; a PUT that leaves it out keeps it")
    default: Any = None
    description: str | None = None


class ChannelOut(BaseModel):
    name: str = Field(description="the `type` of an integration")
    distribution: str | None = Field(None, description="the package that provides it")
    version: str | None = None
    configSchema: dict[str, Any] = Field(description="JSON schema of `config`; secrets have format 'password'")
    fields: list[ConfigFieldOut]


@router.get("", response_model=list[ChannelOut], summary="List channel types and their config schemas")
async def list_channels(_: Caller, context: Context) -> list[ChannelOut]:
    registry = context.registry
    return [
        ChannelOut(
            name=name,
            distribution=registry.channels[name].distribution,
            version=registry.channels[name].version,
            configSchema=registry.channels[name].channel.config_model.model_json_schema(by_alias=True),
            fields=[ConfigFieldOut(**vars(f)) for f in registry.config_fields(name)],
        )
        for name in registry.names()
    ]
