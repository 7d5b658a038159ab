"""SQL for ``sign_in_failures``: failed sign-ins, counted where every process sees them.

A key is what a failure counts against, ``(scope, SHA-256 of the text, limit)``:
the scope names it (``pair``, ``username``, ``address``), the limit is how many
failures within the window lock it. Times are the database's, so processes on
hosts whose clocks differ agree on the window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from uptimed.store import PoolOrConnection

Key = tuple[str, bytes, int]
"""(scope, key hash, limit)."""


def key_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _columns(keys: Sequence[Key]) -> tuple[list[str], list[bytes], list[int]]:
    return [scope for scope, _, _ in keys], [hashed for _, hashed, _ in keys], [limit for _, _, limit in keys]


async def locked_for(conn: PoolOrConnection, keys: Sequence[Key], window_s: float) -> float | None:
    """Seconds until every key may try again, or None when none is locked.

    A key is locked while its ``limit``-th newest failure is within the window:
    until that failure is ``window_s`` old.
    """
    wait: float | None = await conn.fetchval(
        """
        SELECT max(extract(epoch FROM newest.at - now())::float8 + $4)
        FROM unnest($1::text[], $2::bytea[], $3::int[]) AS k(scope, key_hash, lim)
        CROSS JOIN LATERAL (
            SELECT f.at FROM sign_in_failures f
            WHERE f.scope = k.scope AND f.key_hash = k.key_hash AND f.at > now() - make_interval(secs => $4)
            ORDER BY f.at DESC OFFSET k.lim - 1 LIMIT 1
        ) AS newest
        """,
        *_columns(keys),
        window_s,
    )
    return wait if wait is not None and wait > 0 else None


async def fail(conn: PoolOrConnection, keys: Sequence[Key], window_s: float) -> list[str]:
    """Count a failure against each key; the scopes whose limit it reached. Failures older than the window go."""
    reached = await conn.fetch(
        """
        WITH purged AS (
            DELETE FROM sign_in_failures WHERE at <= now() - make_interval(secs => $4)
        ), counted AS (
            SELECT k.scope, k.lim, (
                SELECT count(*) FROM sign_in_failures f
                WHERE f.scope = k.scope AND f.key_hash = k.key_hash AND f.at > now() - make_interval(secs => $4)
            ) AS earlier
            FROM unnest($1::text[], $2::bytea[], $3::int[]) AS k(scope, key_hash, lim)
        ), added AS (
            INSERT INTO sign_in_failures (scope, key_hash) SELECT * FROM unnest($1::text[], $2::bytea[])
        )
        SELECT scope FROM counted WHERE earlier + 1 = lim
        """,
        *_columns(keys),
        window_s,
    )
    return [row["scope"] for row in reached]


async def clear(conn: PoolOrConnection, scope: str, hashed: bytes) -> None:
    """Forget the failures of one key (a right password clears its pair)."""
    await conn.execute("DELETE FROM sign_in_failures WHERE scope = $1 AND key_hash = $2", scope, hashed)
