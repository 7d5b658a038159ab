"""``/api/v1/tokens``: the caller's own API tokens. A new token's secret is answered once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from fastapi import APIRouter, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from uptimed.api.auth import Caller
from uptimed.api.bounds import IdPath
from uptimed.api.context import Context
from uptimed.api.errors import (
    INVALID,
    MALFORMED,
    NOT_FOUND,
    TOO_LARGE,
    UNAUTHORIZED,
)
from uptimed.api.integrations import Deleted
from uptimed.rules.errors import NotFound
from uptimed.store import api_tokens
from uptimed.store.api_tokens import ApiToken

log = structlog.get_logger()

MAX_LIFETIME = timedelta(days=5 * 366)

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses={**MALFORMED, **UNAUTHORIZED})


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=100, description="what the token is for")
    expires_at: AwareDatetime | None = Field(
        None, description="when it stops working (at most 5 years ahead); none: never"
    )

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            now = datetime.now(UTC)
            if value <= now:
                raise ValueError("must be in the future")
            if value > now + MAX_LIFETIME:
                raise ValueError("must be within 5 years")
        return value


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the token's first characters, to tell tokens apart")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = Field(None, description="when it stops working; null: never")


class NewToken(TokenOut):
    token: str = Field(description="the secret: shown this once, store it now")


def out(token: ApiToken) -> TokenOut:
    return TokenOut(**{k: v for k, v in vars(token).items() if k != "user_id"})


@router.get("", response_model=list[TokenOut], summary="The caller's tokens, revoked ones included")
async def list_tokens(user: Caller, context: Context) -> list[TokenOut]:
    return [out(t) for t in await api_tokens.list_for_user(context.pool, user.id)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NewToken,
    responses={**INVALID, **TOO_LARGE},
    summary="Create a token for the caller",
)
async def create_token(body: TokenCreate, user: Caller, context: Context) -> NewToken:
    secret, token = await api_tokens.create(context.pool, user.id, body.name, expires_at=body.expires_at)
    log.info("token.created", id=token.id, prefix=token.prefix, user_id=user.id)
    return NewToken(**out(token).model_dump(), token=secret)


@router.delete(
    "/{token_id}",
    response_model=Deleted,
    responses={**NOT_FOUND, **INVALID},
    summary="Revoke one of the caller's tokens",
)
async def revoke_token(token_id: IdPath, user: Caller, context: Context) -> Deleted:
    if await api_tokens.revoke(context.pool, token_id, user_id=user.id) is None:
        raise NotFound("token")
    log.info("token.revoked", id=token_id, user_id=user.id)
    return Deleted()
