"""SQL for ``api_tokens``: bearer tokens of the HTTP API.

A token is ``upt_`` plus 32 random bytes (URL-safe base64). Only its SHA-256
is stored; ``prefix`` (its first 8 characters) is what a listing shows so a
user can tell tokens apart. The plaintext exists once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from uptimed.store import PoolOrConnection
from uptimed.store.users import User

TOKEN_PREFIX = "upt_"
PREFIX_LENGTH = 8
MAX_TOKEN_LENGTH = 128
"""Anything longer is not one of ours; refused before hashing."""

_COLUMNS = "id, user_id, name, prefix, created_at, last_used_at, revoked_at, expires_at"


@dataclass(frozen=True)
class ApiToken:
    """A stored token, without its secret."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = None
    """After this it no longer authenticates; None: never."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _from_row(row: asyncpg.Record) -> ApiToken:
    return ApiToken(**dict(row))


async def create(
    conn: PoolOrConnection, user_id: int, name: str = "", *, expires_at: datetime | None = None
) -> tuple[str, ApiToken]:
    """A new token for ``user_id``: the plaintext (show it once, never store it) and the stored row."""
    token = new_token()
    row = await conn.fetchrow(
        f"""
        INSERT INTO api_tokens (user_id, name, prefix, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)
        RETURNING {_COLUMNS}
        """,
        user_id,
        name,
        token[:PREFIX_LENGTH],
        token_hash(token),
        expires_at,
    )
    assert row is not None, "INSERT ... RETURNING gives back its row"
    return token, _from_row(row)


async def authenticate(conn: PoolOrConnection, token: str) -> User | None:
    """The user a live (unrevoked, unexpired) token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_hash(token)
    row = await conn.fetchrow(
        """
        SELECT t.id AS token_id, t.token_hash, u.id, u.username, u.email, u.is_admin, u.created_at
        FROM api_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
        """,
        digest,
    )
    # The index lookup already matched; the constant-time comparison keeps it so
    # should the lookup ever become a prefix or range match.
    if row is None or not hmac.compare_digest(bytes(row["token_hash"]), digest):
        return None
    # At most one write a minute per token, not one per request.
    await conn.execute(
        """
        UPDATE api_tokens SET last_used_at = now()
        WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
        """,
        row["token_id"],
    )
    return User(row["id"], row["username"], row["email"], row["is_admin"], row["created_at"])


async def list_for_user(conn: PoolOrConnection, user_id: int) -> list[ApiToken]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id", user_id)
    return [_from_row(row) for row in rows]


async def list_all(conn: PoolOrConnection) -> list[tuple[str, ApiToken]]:
    """Every token with its owner's username, for the command line."""
    rows = await conn.fetch(
        f"""
        SELECT u.username, {", ".join("t." + c.strip() for c in _COLUMNS.split(","))}
        FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id
        """
    )
    return [(row["username"], ApiToken(**{k: v for k, v in row.items() if k != "username"})) for row in rows]


async def revoke(conn: PoolOrConnection, token_id: int, *, user_id: int | None = None) -> ApiToken | None:
    """Revoke a token (only one of ``user_id``'s, when given); the token, or None if there is no such live token."""
    row = await conn.fetchrow(
        f"""
        UPDATE api_tokens SET revoked_at = now()
        WHERE id = $1 AND revoked_at IS NULL AND ($2::bigint IS NULL OR user_id = $2)
        RETURNING {_COLUMNS}
        """,
        token_id,
        user_id,
    )
    return _from_row(row) if row else None
