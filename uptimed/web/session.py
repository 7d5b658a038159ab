"""Who is looking at a page, and whether a form really came from uptimed.

Signing in sets one cookie, ``uptimed_session``: a random token (HttpOnly,
SameSite=Lax, Secure when served over https or when ``[api]
secure_cookies = "always"``). Pages depend on :data:`Visitor`, which sends
anyone without a live session to the sign-in page.

Every state-changing request (a POST) must carry the session's CSRF token,
as the form field ``csrf_token`` or the ``X-CSRF-Token`` header (app.js's
fetches); without it the request is refused with 403 and nothing changes.
The sign-in form itself, which has no session yet, is protected the same
way by a short-lived cookie of its own (double submit).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request, Response

from uptimed.config import ApiSettings
from uptimed.store import web_sessions
from uptimed.store.users import User
from uptimed.web.context import Context

SESSION_COOKIE = "uptimed_session"
SIGN_IN_COOKIE = "uptimed_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_FIELDS = 200


class SignInRequired(Exception):
    """No live session: go to the sign-in page, then come back to ``next``."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageError(Exception):
    """A page answered with an error page (404, 403, ...)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        self.status = status
        self.title = title
        self.message = message


def not_found(what: str) -> PageError:
    """The same answer whether ``what`` does not exist or belongs to someone else."""
    return PageError(404, "Not found", f"There is no such {what}, or it is not yours.")


def forgery() -> PageError:
    return PageError(
        403,
        "Form refused",
        "This request did not carry the page's security token, so nothing was changed. Reload the page and try again.",
    )


@dataclass(frozen=True)
class Visit:
    """A signed-in page view."""

    user: User
    csrf_token: str
    token: str
    notice: str | None


def secure_cookies(settings: ApiSettings, request: Request) -> bool:
    if settings.secure_cookies == "always":
        return True
    if settings.secure_cookies == "never":
        return False
    return request.url.scheme == "https"


def set_cookie(
    response: Response, request: Request, settings: ApiSettings, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings, request),
    )


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def visitor(request: Request, context: Context) -> Visit:
    """The signed-in user of this request; :class:`SignInRequired` otherwise."""
    token = request.cookies.get(SESSION_COOKIE, "")
    session = None
    if token and len(token) <= 100:
        session = await web_sessions.lookup(context.pool, token, lifetime_s=context.settings.api.session_lifetime)
    if session is None:
        raise SignInRequired(_here(request) if request.method == "GET" else "/")
    visit = Visit(user=session.user, csrf_token=session.csrf_token, token=token, notice=session.notice)
    request.state.visit = visit
    return visit


Visitor = Annotated[Visit, Depends(visitor)]


async def maybe_visitor(request: Request, context: Context) -> Visit | None:
    """The signed-in user of this request, if any: for pages anyone with a link may open."""
    try:
        return await visitor(request, context)
    except SignInRequired:
        return None


MaybeVisitor = Annotated[Visit | None, Depends(maybe_visitor)]


def safe_next(value: str | None) -> str:
    """A local path to go to after signing in; anything else (``//evil.example``, ``https://...``) is ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def sign_in_url(next_path: str) -> str:
    return "/login" if next_path == "/" else f"/login?next={quote(next_path, safe='/')}"


async def read_form(request: Request) -> dict[str, list[str]]:
    """The urlencoded body's fields, each with all its values (checkbox groups repeat a name)."""
    body = await request.body()
    fields: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "Bad form", "The form could not be read.") from None
    for name, value in pairs:
        fields.setdefault(name, []).append(value.replace("\x00", ""))
    return fields


def _matches(sent: str | None, expected: str) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


class Form:
    """A posted form whose CSRF token matched: :meth:`get` one value, :meth:`all` of a repeated name."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[-1] if values else default

    def all(self, name: str) -> list[str]:
        return self.fields.get(name, [])

    def __contains__(self, name: str) -> bool:
        return name in self.fields


async def posted(request: Request, visit: Visitor) -> Form:
    """This POST's form, once its CSRF token proved it came from one of this session's pages."""
    form = Form(await read_form(request))
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not _matches(sent, visit.csrf_token):
        raise forgery()
    return form


Posted = Annotated[Form, Depends(posted)]


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def sign_in_token_matches(request: Request, sent: str | None, cookie_name: str = SIGN_IN_COOKIE) -> bool:
    """Whether a form without a session (sign-in, an acknowledge link) sent back its cookie's token."""
    cookie = request.cookies.get(cookie_name)
    return cookie is not None and _matches(sent, cookie)
