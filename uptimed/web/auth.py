"""``/login`` (with its second step, ``/login/verify``) and ``/logout``.

A wrong username and a wrong password get the same answer after the same
work. Failed sign-ins are counted per (username, client address): 10 within
10 minutes refuse that pair for the rest of them, so a stranger who knows a
username locks it only for themselves. Beside it, caps per username (all
addresses together) and per address (all usernames) stop guessing spread
wide. A username no account can have (over 64 characters, or characters a
username never holds) is refused at once: never counted, never logged.
The counts live in memory in :class:`SignInThrottle`, which is bounded and
forgets what is older than the window (per process).

With two-factor sign-in on, a right password leads to a second page asking
for the authenticator's code or a recovery code (``/login/verify``); five
wrong codes, or five minutes, and the password has to be entered again.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from uptimed import passwords
from uptimed.rules import accounts
from uptimed.store import sign_in_challenges, users, web_sessions
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
MAX_TRACKED = 10_000
"""Keys each count keeps at most; beyond it the longest quiet ones are forgotten first."""
SIGN_IN_TOKEN_AGE_S = 3600
CHALLENGE_COOKIE = "uptimed_2fa"
CHALLENGE_LIFETIME_S = 300
MAX_CODE_FAILURES = 5

USERNAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""What the users table allows: any other name belongs to nobody."""


@dataclass
class FailureCount:
    """Failures per key within a window: at most ``limit`` kept per key and ``max_keys`` keys, oldest forgotten."""

    limit: int
    window_s: float = FAILURE_WINDOW_S
    max_keys: int = MAX_TRACKED
    _keys: OrderedDict[Hashable, deque[float]] = field(default_factory=OrderedDict)

    def recent(self, key: Hashable, now: float) -> deque[float]:
        found = self._keys.get(key)
        if found is None:
            return deque(maxlen=self.limit)
        while found and found[0] <= now - self.window_s:
            found.popleft()
        return found

    def locked_for(self, key: Hashable, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        recent = self.recent(key, now)
        return recent[0] + self.window_s - now if len(recent) >= self.limit else None

    def add(self, key: Hashable, now: float) -> bool:
        """Count a failure of ``key``; True when it just reached the limit."""
        recent = self._keys.pop(key, None)
        if recent is None:
            recent = deque(maxlen=self.limit)
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        recent.append(now)
        self._keys[key] = recent  # the most recent last
        self._forget(now)
        return len(recent) == self.limit

    def clear(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def _forget(self, now: float) -> None:
        while self._keys:
            key, oldest = next(iter(self._keys.items()))
            if len(self._keys) <= self.max_keys and oldest and oldest[-1] > now - self.window_s:
                break
            del self._keys[key]

    def __len__(self) -> int:
        return len(self._keys)


@dataclass
class SignInThrottle:
    """The failed sign-ins this process has seen, by (username, address), username and address."""

    pair: FailureCount = field(default_factory=lambda: FailureCount(MAX_FAILURES))
    username: FailureCount = field(default_factory=lambda: FailureCount(MAX_FAILURES_PER_USERNAME))
    address: FailureCount = field(default_factory=lambda: FailureCount(MAX_FAILURES_PER_ADDRESS))

    def locked_for(self, username: str, address: str, now: float) -> float | None:
        waits = [
            self.pair.locked_for((username, address), now),
            self.username.locked_for(username, now),
            self.address.locked_for(address, now),
        ]
        found = [w for w in waits if w is not None]
        return max(found) if found else None

    def fail(self, username: str, address: str, now: float) -> None:
        reached = [
            name
            for name, count, key in (
                ("username and address", self.pair, (username, address)),
                ("username", self.username, username),
                ("address", self.address, address),
            )
            if count.add(key, now)
        ]
        if reached:  # once, when a lock begins: never a line per refused attempt
            log.warning("web.sign_in_locked", username=username, client=address, by=reached)

    def succeed(self, username: str, address: str) -> None:
        self.pair.clear((username, address))


def throttle_of_app(app: Any) -> SignInThrottle:
    """The app's throttle (one per process, as the app is)."""
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
    throttle, address, now = throttle_of(request), client_address(request), time.monotonic()
    wait = throttle.locked_for(username, address, now)
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
        throttle.fail(username, address, now)
        log.info("web.sign_in_failed", username=username, client=address)
        return _wrong(request, context, next_path, username)
    throttle.succeed(username, address)
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
