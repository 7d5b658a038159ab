"""``/account``: the signed-in user's password, two-factor sign-in and API tokens.

A thin face over :mod:`uptimed.rules.accounts`. Secrets shown once (a new
API token, the recovery codes) are answered in the page of the POST that
made them, never stored for a later page; such pages are never cached.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from uptimed import passwords
from uptimed.rules import accounts
from uptimed.rules.errors import Invalid, NotFound, Problem
from uptimed.store import api_tokens, recovery_codes, web_sessions
from uptimed.web.context import Context, IdPath
from uptimed.web.session import Posted, Visit, Visitor
from uptimed.web.templates import render

log = structlog.get_logger()

router = APIRouter(include_in_schema=False)

LIFETIME_LABELS = {"never": "Never", "7d": "In 7 days", "30d": "In 30 days", "90d": "In 90 days", "365d": "In a year"}


def _errors(exc: Invalid) -> dict[str, str]:
    found: dict[str, str] = {}
    for problem in exc.problems:
        found.setdefault(str(problem.loc[0]) if problem.loc else "form", problem.msg)
    return found


async def _page(
    request: Request, visit: Visit, context: Context, *, status_code: int = 200, **shown: Any
) -> HTMLResponse:
    pool = context.pool
    shown.setdefault("errors", {})
    for name in ("recovery_codes", "new_token", "new_secret"):
        shown.setdefault(name, None)
    shown.setdefault("enrolment", await accounts.pending_enrolment(pool, visit.user))
    return render(
        request,
        "account.html",
        status_code=status_code,
        notice=visit.notice,
        tokens=await api_tokens.list_for_user(pool, visit.user.id),
        two_factor=await accounts.has_second_factor(pool, visit.user.id),
        recovery_left=await recovery_codes.remaining(pool, visit.user.id),
        lifetimes=[(value, LIFETIME_LABELS[value]) for value in accounts.TOKEN_LIFETIMES],
        min_length=passwords.MIN_LENGTH,
        **shown,
    )


def _back(anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/account{anchor}", status_code=303)


@router.get("/account")
async def account_page(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    return await _page(request, visit, context)


@router.post("/account/password")
async def change_password(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    new = form.get("new")
    try:
        if new != form.get("repeat"):
            raise Invalid([Problem(("repeat",), "the two new passwords differ")])
        ended = await accounts.change_password(
            context.pool, visit.user, current=form.get("current"), new=new, keep_session=visit.token
        )
    except Invalid as exc:
        return await _page(request, visit, context, status_code=422, errors=_errors(exc))
    others = f" {ended} other session{'s' * (ended != 1)} signed out." if ended else ""
    await web_sessions.set_notice(context.pool, visit.token, f"Password changed.{others}")
    return _back()


@router.post("/account/tokens")
async def create_token(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    try:
        secret, token = await accounts.create_token(context.pool, visit.user, form.get("name"), form.get("expires"))
    except Invalid as exc:
        return await _page(request, visit, context, status_code=422, errors=_errors(exc))
    return await _page(request, visit, context, status_code=201, new_token=token, new_secret=secret)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(token_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    revoked = await api_tokens.revoke(context.pool, token_id, user_id=visit.user.id)
    if revoked is None:
        raise NotFound("token")
    log.info("token.revoked", id=token_id, user_id=visit.user.id)
    await web_sessions.set_notice(context.pool, visit.token, f"Token {revoked.name or revoked.prefix} revoked.")
    return _back("#tokens")


@router.post("/account/two-factor")
async def start_two_factor(request: Request, visit: Visitor, _: Posted, context: Context) -> Response:
    enrolment = await accounts.start_enrolment(context.pool, visit.user)
    return await _page(request, visit, context, enrolment=enrolment)


@router.post("/account/two-factor/confirm")
async def confirm_two_factor(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    try:
        codes = await accounts.confirm_enrolment(context.pool, visit.user, form.get("code"))
    except Invalid as exc:
        return await _page(request, visit, context, status_code=422, errors=_errors(exc))
    return await _page(request, visit, context, recovery_codes=codes, enrolment=None)


@router.post("/account/two-factor/disable")
async def disable_two_factor(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    try:
        await accounts.disable(context.pool, visit.user, password=form.get("password"))
    except Invalid as exc:
        return await _page(request, visit, context, status_code=422, errors=_errors(exc))
    await web_sessions.set_notice(context.pool, visit.token, "Two-factor sign-in turned off.")
    return _back("#two-factor")
