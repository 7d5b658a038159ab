"""``/api/v1/kinds``: the installed monitor kinds and the JSON schema of each one's options."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from uptimed.api.auth import Caller
from uptimed.api.channels import ConfigFieldOut
from uptimed.api.errors import MALFORMED, UNAUTHORIZED
from uptimed.probe.kinds import default_kinds

router = APIRouter(prefix="/api/v1/kinds", tags=["monitors"], responses={**MALFORMED, **UNAUTHORIZED})


class KindOut(BaseModel):
    name: str = Field(description='the `kind` of a monitor; its options go under this key (`"dns": {...}`)')
    title: str
    distribution: str | None = Field(None, description="the package that provides it")
    version: str | None = None
    scheduled: bool = Field(description="false for a kind whose results are pushed (heartbeat: its ping URL)")
    target: str | None = Field(None, description="what a monitor's `target` holds for this kind")
    optionsSchema: dict[str, Any] = Field(description="JSON schema of the options; secrets have format 'password'")
    fields: list[ConfigFieldOut]


@router.get("", response_model=list[KindOut], summary="List monitor kinds and their options' schemas")
async def list_kinds(_: Caller) -> list[KindOut]:
    kinds = default_kinds()
    return [
        KindOut(
            name=name,
            title=kinds.title(name),
            distribution=kinds.get(name).distribution,
            version=kinds.get(name).version,
            scheduled=kinds.get(name).scheduled,
            target=kinds.target_help(name),
            optionsSchema=kinds.get(name).kind.config_model.model_json_schema(by_alias=True),
            fields=[ConfigFieldOut(**vars(f)) for f in kinds.config_fields(name)],
        )
        for name in kinds.names()
    ]
