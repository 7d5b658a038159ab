"""A user's own account: the password, API tokens, and two-factor sign-in (TOTP with recovery codes).

The pages' account page and sign-in are faces over these. A password change
needs the current password, refuses a short or common new one
(:func:`uptimed.passwords.check_password`) and signs out every other
session. TOTP follows RFC 6238 (pyotp: 6 digits, 30 s steps, one step of
clock drift either way); a code signs in once (its step is recorded), and ten
one-time recovery codes stand in for a lost authenticator. The QR code for
an authenticator app is drawn as SVG here (segno), no service involved.
"""

from __future__ import annotations

import io
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pyotp
import segno
import structlog

from uptimed import passwords
from uptimed.rules.errors import Invalid, Problem
from uptimed.store import api_tokens, recovery_codes, users, web_sessions
from uptimed.store.api_tokens import ApiToken
from uptimed.store.users import User

log = structlog.get_logger()

ISSUER = "uptimed"
RECOVERY_CODES = 10
TOTP_STEP_S = 30
DRIFT_STEPS = 1
"""Codes of the step before and after the current one pass too: phones' clocks are a little off."""

TOKEN_LIFETIMES: dict[str, timedelta | None] = {
    "never": None,
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "365d": timedelta(days=365),
}
"""The expiries the account page offers for a new API token."""


def _invalid(field: str, message: str, type_: str = "value_error") -> Invalid:
    return Invalid([Problem((field,), message, type_)])


async def change_password(pool: asyncpg.Pool, user: User, *, current: str, new: str, keep_session: str) -> int:
    """Set ``new`` after checking ``current``; every other session ends. How many ended.

    :class:`Invalid` at ``current`` when it is wrong, at ``new`` when it is too weak.
    """
    stored = await users.get_password_hash(pool, user.id)
    if not await passwords.verify_async(current, stored):
        raise _invalid("current", "this is not your current password", "wrong_password")
    try:
        hashed = await passwords.hash_password_async(new, username=user.username)
    except passwords.WeakPassword as exc:
        raise _invalid("new", str(exc), "weak_password") from None
    async with pool.acquire() as conn, conn.transaction():
        await users.set_password_hash(conn, user.id, hashed)
        ended = await web_sessions.delete_others(conn, user.id, keep_session)
    log.info("account.password_changed", user_id=user.id, sessions_ended=ended)
    return ended


async def create_token(pool: asyncpg.Pool, user: User, name: str, lifetime: str) -> tuple[str, ApiToken]:
    """A new API token of ``user`` (``lifetime`` one of :data:`TOKEN_LIFETIMES`): its secret, shown once, and its row."""
    name = name.strip()
    if len(name) > 100 or any(not ch.isprintable() for ch in name):
        raise _invalid("name", "at most 100 printable characters")
    if lifetime not in TOKEN_LIFETIMES:
        raise _invalid("expires", f"one of {', '.join(TOKEN_LIFETIMES)}")
    length = TOKEN_LIFETIMES[lifetime]
    expires_at = datetime.now(UTC) + length if length is not None else None
    secret, token = await api_tokens.create(pool, user.id, name, expires_at=expires_at)
    log.info("token.created", id=token.id, prefix=token.prefix, user_id=user.id, expires_at=expires_at)
    return secret, token


# Two-factor sign-in


def totp_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(text: str) -> str:
    """``text`` as a QR code: an inline SVG element, black on white, that scales with its box."""
    out = io.BytesIO()
    segno.make(text, error="m").save(
        out,
        kind="svg",
        xmldecl=False,
        svgns=True,
        scale=4,
        border=2,
        omitsize=True,
        svgclass="qr",
        title="QR code",
        dark="#000",
        light="#fff",
    )
    return out.getvalue().decode()


@dataclass(frozen=True)
class Enrolment:
    """What the page shows to set up an authenticator: the secret in words, and as a QR code."""

    secret: str
    uri: str
    svg: str


async def start_enrolment(pool: asyncpg.Pool, user: User) -> Enrolment:
    """A new secret, kept as pending until :func:`confirm_enrolment` sees a code from it."""
    secret = pyotp.random_base32()
    await users.set_pending_totp(pool, user.id, secret)
    uri = totp_uri(secret, user.username)
    return Enrolment(secret=secret, uri=uri, svg=qr_svg(uri))


async def pending_enrolment(pool: asyncpg.Pool, user: User) -> Enrolment | None:
    """The enrolment under way, to show again after a wrong code."""
    state = await users.second_factor(pool, user.id)
    if state.pending is None:
        return None
    uri = totp_uri(state.pending, user.username)
    return Enrolment(secret=state.pending, uri=uri, svg=qr_svg(uri))


def _matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step whose code ``code`` is (within the drift), or None."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = int(at if at is not None else time.time())
    current = now // TOTP_STEP_S
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if secrets.compare_digest(totp.at(step * TOTP_STEP_S), code):
            return step
    return None


async def confirm_enrolment(pool: asyncpg.Pool, user: User, code: str) -> list[str]:
    """Turn two-factor sign-in on once ``code`` comes from the pending secret; the new recovery codes (shown once)."""
    state = await users.second_factor(pool, user.id)
    step = _matching_step(state.pending, code) if state.pending else None
    if state.pending is None or step is None:
        raise _invalid("code", "that code does not match: enter the 6 digits your app shows now", "wrong_code")
    codes = new_recovery_codes()
    async with pool.acquire() as conn, conn.transaction():
        if not await users.confirm_totp(conn, user.id, state.pending, step):
            raise _invalid("code", "the set-up changed meanwhile: start again", "wrong_code")
        await recovery_codes.replace(conn, user.id, codes)
    log.info("account.totp_enabled", user_id=user.id)
    return codes


async def disable(pool: asyncpg.Pool, user: User, *, password: str) -> None:
    """Turn two-factor sign-in off (the password proves it is the user)."""
    if not await passwords.verify_async(password, await users.get_password_hash(pool, user.id)):
        raise _invalid("password", "this is not your current password", "wrong_password")
    async with pool.acquire() as conn, conn.transaction():
        await users.disable_totp(conn, user.id)
        await recovery_codes.forget(conn, user.id)
    log.info("account.totp_disabled", user_id=user.id)


def new_recovery_codes() -> list[str]:
    """Ten codes like ``k7rq-m2xp-4dwa``: 60 bits each, easy to read and type."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3)) for _ in range(RECOVERY_CODES)
    ]


async def has_second_factor(pool: asyncpg.Pool, user_id: int) -> bool:
    return (await users.second_factor(pool, user_id)).secret is not None


async def verify_second_factor(pool: asyncpg.Pool, user_id: int, entered: str) -> str | None:
    """How ``entered`` proved the second factor (``"totp"`` or ``"recovery code"``), or None when it did not.

    A TOTP code is spent with its time step (a replayed code fails); a recovery code is spent for good.
    """
    state = await users.second_factor(pool, user_id)
    if state.secret is None:
        return None
    text = entered.strip().lower()
    step = _matching_step(state.secret, text)
    if step is not None:
        return "totp" if await users.use_totp_step(pool, user_id, step) else None
    if len(text) == 14 and await recovery_codes.use(pool, user_id, text):
        log.info("account.recovery_code_used", user_id=user_id, left=await recovery_codes.remaining(pool, user_id))
        return "recovery code"
    return None
