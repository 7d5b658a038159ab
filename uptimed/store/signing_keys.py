"""SQL for ``signing_keys``: secrets every process of the cluster shares, made once by whoever needs one first."""

from __future__ import annotations

import secrets

from uptimed.store import PoolOrConnection

KEY_BYTES = 32


async def get_or_create(conn: PoolOrConnection, name: str) -> bytes:
    """The key called ``name``; a new random one the first time any process asks."""
    await conn.execute(
        "INSERT INTO signing_keys (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name,
        secrets.token_bytes(KEY_BYTES),
    )
    key: bytes = await conn.fetchval("SELECT secret FROM signing_keys WHERE name = $1", name)
    return key
