"""``/api/v1/export``: the caller's monitors, integrations, escalation policies and maintenance windows as TOML, the
config file's format.

What ``uptimed export --user NAME`` writes; secrets only with ``?secrets=true``.
``uptimed import`` reads it back.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from uptimed.api.auth import Caller
from uptimed.api.context import Context
from uptimed.api.errors import INVALID, MALFORMED, UNAUTHORIZED
from uptimed.rules import exports

router = APIRouter(prefix="/api/v1/export", tags=["export"], responses={**MALFORMED, **UNAUTHORIZED})


@router.get(
    "",
    response_model=None,
    responses={**INVALID, 200: {"description": "TOML", "content": {"application/toml": {}}}},
    summary="Export your monitors, integrations, escalation policies and maintenance windows as TOML",
)
async def export(
    user: Caller,
    context: Context,
    secrets: Annotated[bool, Query(description="include secrets (webhook URLs, tokens)")] = False,
) -> PlainTextResponse:
    text = await exports.export(context.pool, context.registry, user.username, secrets=secrets)
    return PlainTextResponse(
        text,
        media_type="application/toml",
        headers={
            "Content-Disposition": f'attachment; filename="uptimed-{user.username}.toml"',
            "Cache-Control": "no-store",
        },
    )
