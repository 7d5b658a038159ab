"""Bearer tokens: who is calling. Every ``/api/v1`` route depends on :data:`Caller`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from uptimed.api.context import Context
from uptimed.api.errors import ApiError
from uptimed.store import api_tokens
from uptimed.store.users import User

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token (`upt_...`), printed once by `uptimed user create` or `uptimed token create`.",
)


class Unauthorized(ApiError):
    def __init__(self, detail: str, *, error: str | None = None) -> None:
        challenge = f'Bearer realm="uptimed", error="{error}"' if error else 'Bearer realm="uptimed"'
        super().__init__(401, detail, headers={"WWW-Authenticate": challenge})


async def authenticate(
    context: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User:
    """The user the request's bearer token belongs to; 401 otherwise."""
    if credentials is None:
        raise Unauthorized("an 'Authorization: Bearer <token>' header is required")
    user = await api_tokens.authenticate(context.pool, credentials.credentials)
    if user is None:
        raise Unauthorized("the token is not valid (unknown, revoked or expired)", error="invalid_token")
    # Counted per token once it proved valid: 429 with Retry-After past [quotas] api_requests_per_minute.
    context.limits.api_request(api_tokens.token_hash(credentials.credentials))
    return user


Caller = Annotated[User, Depends(authenticate)]
