"""``/login`` and ``/logout``.

A wrong username and a wrong password get the same answer after the same
work. After 10 failed attempts for one username within 10 minutes, that
name is refused for the rest of those minutes (per process): slow enough to
stop guessing, short enough that a real user locked out waits a little.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from uptimed import passwords
from uptimed.store import users, web_sessions
from uptimed.web.context import Context
from uptimed.web.session import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    Posted,
    Visitor,
    forgery,
    new_sign_in_token,
    read_form,
    safe_next,
    set_cookie,
    sign_in_token_matches,
)
from uptimed.web.templates import render

log = structlog.get_logger()

router = APIRouter(include_in_schema=False)

MAX_FAILURES = 10
FAILURE_WINDOW_S = 600.0
SIGN_IN_TOKEN_AGE_S = 3600

_failures: defaultdict[str, deque[float]] = defaultdict(deque)


def _recent_failures(username: str, now: float) -> deque[float]:
    recent = _failures[username]
    while recent and recent[0] < now - FAILURE_WINDOW_S:
        recent.popleft()
    return recent


NextQuery = Annotated[str | None, Query(alias="next", max_length=2000)]


def _sign_in_page(
    request: Request,
    context: Context,
    *,
    next_path: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    token = new_sign_in_token()
    response = render(
        request,
        "login.html",
        status_code=status_code,
        sign_in_token=token,
        next_path=next_path,
        username=username,
        error=error,
    )
    set_cookie(response, request, context.settings.api, SIGN_IN_COOKIE, token, SIGN_IN_TOKEN_AGE_S)
    return response


@router.get("/login")
async def sign_in_page(request: Request, context: Context, next: NextQuery = None) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and await web_sessions.lookup(context.pool, token, lifetime_s=context.settings.api.session_lifetime):
        return RedirectResponse(safe_next(next), status_code=303)
    return _sign_in_page(request, context, next_path=safe_next(next))


@router.post("/login")
async def sign_in(request: Request, context: Context) -> Response:
    form = await read_form(request)

    def field(name: str) -> str:
        return (form.get(name) or [""])[-1]

    username, password, next_path = field("username").strip(), field("password"), safe_next(field("next"))
    if not sign_in_token_matches(request, field("csrf_token")):
        raise forgery()
    now = time.monotonic()
    recent = _recent_failures(username, now)
    if len(recent) >= MAX_FAILURES:
        wait = int(recent[0] + FAILURE_WINDOW_S - now) + 1
        log.warning("web.sign_in_throttled", username=username)
        return _sign_in_page(
            request,
            context,
            next_path=next_path,
            username=username,
            status_code=429,
            error=f"Too many failed attempts for this username. Try again in {wait // 60 + 1} minutes.",
        )
    found = await users.get_with_password_hash(context.pool, username) if 0 < len(username) <= 64 else None
    user, stored = found if found else (None, None)
    if not await passwords.verify_async(password, stored) or user is None:
        recent.append(now)
        log.info("web.sign_in_failed", username=username)
        return _sign_in_page(
            request,
            context,
            next_path=next_path,
            username=username,
            status_code=401,
            error="Wrong username or password.",
        )
    recent.clear()
    lifetime = context.settings.api.session_lifetime
    token = await web_sessions.create(context.pool, user.id, lifetime_s=lifetime)
    log.info("web.signed_in", user_id=user.id)
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, request, context.settings.api, SESSION_COOKIE, token, int(lifetime))
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    return response


@router.post("/logout")
async def sign_out(visit: Visitor, _: Posted, context: Context) -> Response:
    await web_sessions.delete(context.pool, visit.token)
    log.info("web.signed_out", user_id=visit.user.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
