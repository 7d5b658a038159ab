"""SQL for ``recovery_codes``: one-time codes that stand in for a lost authenticator. Only their SHA-256 is kept."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from uptimed.store import Connection, PoolOrConnection


def code_hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


async def replace(conn: Connection, user_id: int, codes: Sequence[str]) -> None:
    """The user's recovery codes become ``codes`` (the old ones stop working). Call inside a transaction."""
    await conn.execute("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
    await conn.executemany(
        "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)", [(user_id, code_hash(c)) for c in codes]
    )


async def use(conn: PoolOrConnection, user_id: int, code: str) -> bool:
    """Spend one unused code of the user's; False when it is not one (or was used)."""
    row = await conn.fetchval(
        """
        UPDATE recovery_codes SET used_at = now()
        WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING user_id
        """,
        user_id,
        code_hash(code),
    )
    return row is not None


async def remaining(conn: PoolOrConnection, user_id: int) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL", user_id
    )
    return count


async def forget(conn: PoolOrConnection, user_id: int) -> None:
    await conn.execute("DELETE FROM recovery_codes WHERE user_id = $1", user_id)
