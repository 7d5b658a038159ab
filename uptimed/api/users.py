"""``/api/v1/me`` and ``/api/v1/users``: who the caller is; every user, for admins."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from uptimed.api import pagination
from uptimed.api.auth import Caller
from uptimed.api.bounds import DEFAULT_PAGE, CursorQuery, Limit
from uptimed.api.context import Context
from uptimed.api.errors import FORBIDDEN, INVALID, MALFORMED, UNAUTHORIZED, ApiError
from uptimed.rules.cursors import id_position
from uptimed.store import users
from uptimed.store.users import User

router = APIRouter(prefix="/api/v1", tags=["users"], responses={**MALFORMED, **UNAUTHORIZED})


class UserOut(BaseModel):
    id: int
    username: str
    email: str
    is_admin: bool
    created_at: datetime


def out(user: User) -> UserOut:
    return UserOut(**vars(user))


@router.get("/me", response_model=UserOut, summary="The caller")
async def me(user: Caller) -> UserOut:
    return out(user)


@router.get(
    "/users",
    response_model=list[UserOut],
    responses={**FORBIDDEN, **INVALID, 200: {"description": "in id order", "headers": pagination.HEADERS_DOC}},
    summary="Every user (admins only)",
)
async def list_users(
    request: Request,
    response: Response,
    user: Caller,
    context: Context,
    limit: Limit = DEFAULT_PAGE,
    cursor: CursorQuery = None,
) -> list[UserOut]:
    if not user.is_admin:
        raise ApiError(403, "listing users needs an admin token")
    after = pagination.decode(cursor, id_position)
    rows = await users.page(context.pool, after_id=after, limit=limit + 1)
    return [out(u) for u in pagination.page(rows, limit, request, response, lambda u: {"id": u.id})]
