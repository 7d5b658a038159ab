"""SQL for ``web_sessions``: who is signed in to the web pages.

The cookie carries a random token; only its SHA-256 is stored, so a copy of
the database signs nobody in. Each session has its own CSRF token, which
every form of that session sends back. A session expires after the
configured lifetime without use; using it pushes the expiry out (at most
once a minute, to keep page views read-only most of the time).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from uptimed.store import PoolOrConnection
from uptimed.store.users import User

_TOUCH_AFTER_S = 60


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    notice: str | None
    """A one-time message for the next page (set by :func:`set_notice`), already cleared in the database."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create(conn: PoolOrConnection, user_id: int, *, lifetime_s: float) -> str:
    """A new session for ``user_id``; returns the cookie's token (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        """
        INSERT INTO web_sessions (token_hash, user_id, csrf_token, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        """,
        _digest(token),
        user_id,
        secrets.token_urlsafe(32),
        lifetime_s,
    )
    # Sign-ins are rare: a good moment to forget expired sessions.
    await conn.execute("DELETE FROM web_sessions WHERE expires_at < now() - interval '1 day'")
    return token


async def lookup(conn: PoolOrConnection, token: str, *, lifetime_s: float) -> Session | None:
    """The live session of ``token`` with its user; None when unknown or expired."""
    row = await conn.fetchrow(
        """
        WITH found AS (
            SELECT token_hash FROM web_sessions WHERE token_hash = $1 AND expires_at > now()
        ), touched AS (
            UPDATE web_sessions s SET
                notice = NULL,
                last_seen_at = CASE WHEN s.last_seen_at < now() - make_interval(secs => $3)
                                    THEN now() ELSE s.last_seen_at END,
                expires_at = CASE WHEN s.last_seen_at < now() - make_interval(secs => $3)
                                  THEN now() + make_interval(secs => $2) ELSE s.expires_at END
            FROM found WHERE s.token_hash = found.token_hash
              AND (s.notice IS NOT NULL OR s.last_seen_at < now() - make_interval(secs => $3))
        )
        SELECT s.csrf_token, s.notice, u.id, u.username, u.email, u.is_admin, u.created_at, u.time_zone
        FROM web_sessions s JOIN found ON found.token_hash = s.token_hash JOIN users u ON u.id = s.user_id
        """,
        _digest(token),
        lifetime_s,
        float(_TOUCH_AFTER_S),
    )
    if row is None:
        return None
    user = User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        is_admin=row["is_admin"],
        created_at=row["created_at"],
        time_zone=row["time_zone"],
    )
    return Session(user=user, csrf_token=row["csrf_token"], notice=row["notice"])


async def set_notice(conn: PoolOrConnection, token: str, notice: str) -> None:
    """A message the session's next page shows once ("Monitor created")."""
    await conn.execute("UPDATE web_sessions SET notice = $2 WHERE token_hash = $1", _digest(token), notice[:500])


async def delete(conn: PoolOrConnection, token: str) -> None:
    await conn.execute("DELETE FROM web_sessions WHERE token_hash = $1", _digest(token))


async def delete_for_user(conn: PoolOrConnection, user_id: int) -> int:
    """Sign ``user_id`` out everywhere (after a password change); returns how many sessions ended."""
    result = await conn.execute("DELETE FROM web_sessions WHERE user_id = $1", user_id)
    return int(result.split()[-1])


async def delete_others(conn: PoolOrConnection, user_id: int, token: str) -> int:
    """Sign ``user_id`` out everywhere but the session of ``token``; returns how many sessions ended."""
    result = await conn.execute(
        "DELETE FROM web_sessions WHERE user_id = $1 AND token_hash <> $2", user_id, _digest(token)
    )
    return int(result.split()[-1])
