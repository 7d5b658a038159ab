"""SQL for ``sign_in_challenges``: a sign-in whose password was right, waiting for its second factor.

The browser holds a random token (a cookie); only its SHA-256 is stored. A
challenge lasts a few minutes and allows a few wrong codes, then the
password has to be entered again.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from uptimed.store import PoolOrConnection


@dataclass(frozen=True)
class Challenge:
    user_id: int
    next_path: str
    failures: int


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create(conn: PoolOrConnection, user_id: int, next_path: str, *, lifetime_s: float) -> str:
    """A new challenge; returns the token for the browser (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    await conn.execute("DELETE FROM sign_in_challenges WHERE expires_at < now()")
    await conn.execute(
        """
        INSERT INTO sign_in_challenges (token_hash, user_id, next_path, expires_at)
        VALUES ($1, $2, $3, now() + make_interval(secs => $4))
        """,
        _digest(token),
        user_id,
        next_path,
        lifetime_s,
    )
    return token


async def lookup(conn: PoolOrConnection, token: str) -> Challenge | None:
    row = await conn.fetchrow(
        "SELECT user_id, next_path, failures FROM sign_in_challenges WHERE token_hash = $1 AND expires_at > now()",
        _digest(token),
    )
    return Challenge(row["user_id"], row["next_path"], row["failures"]) if row else None


async def fail(conn: PoolOrConnection, token: str) -> int:
    """Count a wrong code; how many there were."""
    failures: int | None = await conn.fetchval(
        "UPDATE sign_in_challenges SET failures = failures + 1 WHERE token_hash = $1 RETURNING failures",
        _digest(token),
    )
    return failures or 0


async def delete(conn: PoolOrConnection, token: str) -> None:
    await conn.execute("DELETE FROM sign_in_challenges WHERE token_hash = $1", _digest(token))
