"""``/login`` (with its second step, ``/login/verify``) and ``/logout``.

A wrong username and a wrong password get the same answer after the same
work. Failed sign-ins are counted per (username, client address): 10 within
10 minutes refuse that pair for the rest of them, so a stranger who knows a
username locks it only for themselves. Beside it, caps per username (all
addresses together) and per address (all usernames) stop guessing spread
wide. A username no account can have (over 64 characters, or characters a
username never holds) is refused at once: never counted, never logged.
:class:`SignInThrottle` counts in PostgreSQL (``sign_in_failures``, hashed
keys), so every process of a cluster counts the same failures; what is older
than the window is deleted as new failures arrive.

With two-factor sign-in on, a right password leads to a second page asking
for the authenticator's code or a recovery code (``/login/verify``); five
wrong codes, or five minutes, and the password has to be entered again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from uptimed import passwords
from uptimed.rules import accounts
from uptimed.store import PoolOrConnection, sign_in_challenges, sign_in_failures, users, web_sessions
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
"""Failed sign-ins of one username from one address within the window before that pair is refused."""
MAX_FAILURES_PER_USERNAME = 100
"""From every address together: guessing one password from many addresses is bounded too."""
MAX_FAILURES_PER_ADDRESS = 50
"""Of every username together: one address spraying a password over many usernames."""
FAILURE_WINDOW_S = 600.0
SIGN_IN_TOKEN_AGE_S = 3600
CHALLENGE_COOKIE = "uptimed_2fa"
CHALLENGE_LIFETIME_S = 300
MAX_CODE_FAILURES = 5

USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""What the users table allows: any other name belongs to nobody."""


_LOCKED_BY = {"pair": "username and address", "username": "username", "address": "address"}


@dataclass(frozen=True)
class SignInThrottle:
    """Failed sign-ins by (username, address), username and address: how many lock each, within what window."""

    per_pair: int = MAX_FAILURES
    per_username: int = MAX_FAILURES_PER_USERNAME
    per_address: int = MAX_FAILURES_PER_ADDRESS
    window_s: float = FAILURE_WINDOW_S

    def _keys(self, username: str, address: str) -> list[sign_in_failures.Key]:
        return [
            ("pair", _pair_hash(username, address), self.per_pair),
            ("username", sign_in_failures.key_hash(username), self.per_username),
            ("address", sign_in_failures.key_hash(address), self.per_address),
        ]

    async def locked_for(self, conn: PoolOrConnection, username: str, address: str) -> float | None:
        """Seconds until this username may try again from this address, or None when it may now."""
        return await sign_in_failures.locked_for(conn, self._keys(username, address), self.window_s)

    async def fail(self, conn: PoolOrConnection, username: str, address: str) -> None:
        reached = await sign_in_failures.fail(conn, self._keys(username, address), self.window_s)
        if reached:  # once, when a lock begins: never a line per refused attempt
            log.warning(
                "web.sign_in_locked", username=username, client=address, by=[_LOCKED_BY[scope] for scope in reached]
            )

    async def succeed(self, conn: PoolOrConnection, username: str, address: str) -> None:
        await sign_in_failures.clear(conn, "pair", _pair_hash(username, address))


def _pair_hash(username: str, address: str) -> bytes:
    return sign_in_failures.key_hash(f"{username} {address}")  # a username holds no space


def throttle_of_app(app: Any) -> SignInThrottle:
    """The app's throttle: its limits (the counts are in the database)."""
    state = app.state
    if not hasattr(state, "sign_in_throttle"):
        state.sign_in_throttle = SignInThrottle()
    throttle: SignInThrottle = state.sign_in_throttle
    return throttle


def throttle_of(request: Request) -> SignInThrottle:
    return throttle_of_app(request.app)


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


NextQuery = Annotated[str | None, Query(alias="next", max_length=2000)]


def _sign_in_page(
    request: Request,
    context: Context,
    *,
    next_path: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
    template: str = "login.html",
) -> Response:
    token = new_sign_in_token()
    response = render(
        request,
        template,
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


def _wrong(request: Request, context: Context, next_path: str, username: str) -> Response:
    return _sign_in_page(
        request,
        context,
        next_path=next_path,
        username=username,
        status_code=401,
        error="Wrong username or password.",
    )


async def _signed_in(request: Request, context: Context, user_id: int, next_path: str) -> Response:
    lifetime = context.settings.api.session_lifetime
    token = await web_sessions.create(context.pool, user_id, lifetime_s=lifetime)
    log.info("web.signed_in", user_id=user_id)
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, request, context.settings.api, SESSION_COOKIE, token, int(lifetime))
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    response.delete_cookie(CHALLENGE_COOKIE, path="/")
    return response


@router.post("/login")
async def sign_in(request: Request, context: Context) -> Response:
    form = await read_form(request)

    def field(name: str) -> str:
        return (form.get(name) or [""])[-1]

    username, password, next_path = field("username").strip(), field("password"), safe_next(field("next"))
    if not sign_in_token_matches(request, field("csrf_token")):
        raise forgery()
    if not USERNAME.fullmatch(username):
        return _wrong(request, context, next_path, "")  # nobody's name: not counted, not logged, not shown again
    throttle, address = throttle_of(request), client_address(request)
    wait = await throttle.locked_for(context.pool, username, address)
    if wait is not None:
        log.debug("web.sign_in_throttled", username=username, client=address)
        return _sign_in_page(
            request,
            context,
            next_path=next_path,
            username=username,
            status_code=429,
            error=f"Too many failed attempts for this username. Try again in {int(wait) // 60 + 1} minutes.",
        )
    found = await users.get_with_password_hash(context.pool, username)
    user, stored = found if found else (None, None)
    if not await passwords.verify_async(password, stored) or user is None:
        await throttle.fail(context.pool, username, address)
        log.info("web.sign_in_failed", username=username, client=address)
        return _wrong(request, context, next_path, username)
    await throttle.succeed(context.pool, username, address)
    if not await accounts.has_second_factor(context.pool, user.id):
        return await _signed_in(request, context, user.id, next_path)
    challenge = await sign_in_challenges.create(context.pool, user.id, next_path, lifetime_s=CHALLENGE_LIFETIME_S)
    response = RedirectResponse("/login/verify", status_code=303)
    set_cookie(response, request, context.settings.api, CHALLENGE_COOKIE, challenge, CHALLENGE_LIFETIME_S)
    return response


async def _challenge(request: Request, context: Context) -> sign_in_challenges.Challenge | None:
    token = request.cookies.get(CHALLENGE_COOKIE)
    if not token or len(token) > 100:
        return None
    return await sign_in_challenges.lookup(context.pool, token)


@router.get("/login/verify")
async def second_step_page(request: Request, context: Context) -> Response:
    challenge = await _challenge(request, context)
    if challenge is None:
        return RedirectResponse("/login", status_code=303)
    return _sign_in_page(request, context, next_path=challenge.next_path, template="login_verify.html")


@router.post("/login/verify")
async def second_step(request: Request, context: Context) -> Response:
    form = await read_form(request)
    sent = (form.get("csrf_token") or [""])[-1]
    if not sign_in_token_matches(request, sent):
        raise forgery()
    challenge = await _challenge(request, context)
    token = request.cookies.get(CHALLENGE_COOKIE, "")
    if challenge is None:
        return RedirectResponse("/login", status_code=303)
    code = (form.get("code") or [""])[-1][:100]
    how = await accounts.verify_second_factor(context.pool, challenge.user_id, code)
    if how is not None:
        await sign_in_challenges.delete(context.pool, token)
        log.info("web.second_factor_passed", user_id=challenge.user_id, by=how)
        return await _signed_in(request, context, challenge.user_id, challenge.next_path)
    failures = await sign_in_challenges.fail(context.pool, token)
    log.info("web.second_factor_failed", user_id=challenge.user_id, failures=failures)
    if failures >= MAX_CODE_FAILURES:
        await sign_in_challenges.delete(context.pool, token)
        response = _sign_in_page(
            request,
            context,
            next_path=challenge.next_path,
            status_code=401,
            error="Too many wrong codes. Sign in again.",
        )
        response.delete_cookie(CHALLENGE_COOKIE, path="/")
        return response
    return _sign_in_page(
        request,
        context,
        next_path=challenge.next_path,
        status_code=401,
        error="That code is not right. Enter the 6 digits your app shows now, or one of your recovery codes.",
        template="login_verify.html",
    )


@router.post("/logout")
async def sign_out(visit: Visitor, _: Posted, context: Context) -> Response:
    await web_sessions.delete(context.pool, visit.token)
    log.info("web.signed_out", user_id=visit.user.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
