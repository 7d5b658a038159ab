"""SQL for ``users``: the people monitors, integrations and tokens belong to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from uptimed.store import PoolOrConnection

_COLUMNS = "id, username, email, is_admin, created_at, time_zone"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    is_admin: bool
    created_at: datetime
    time_zone: str | None = None
    """The zone the pages show times in; None: the browser's."""


class UserExists(Exception):
    """The username or the email address is taken."""


class InvalidUser(ValueError):
    """The username or the email address does not fit the table's rules."""


def _from_row(row: asyncpg.Record) -> User:
    return User(**dict(row))


async def create(conn: PoolOrConnection, username: str, email: str, *, is_admin: bool = False) -> User:
    """Insert a user; :class:`UserExists` when the name or address is taken, :class:`InvalidUser` when malformed."""
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users (username, email, is_admin) VALUES ($1, $2, $3) RETURNING {_COLUMNS}",
            username,
            email,
            is_admin,
        )
    except asyncpg.UniqueViolationError:
        raise UserExists(username) from None
    except asyncpg.CheckViolationError:
        raise InvalidUser(
            "a username is 1 to 64 letters, digits, '.', '_' or '-'; an email address 3 to 254 characters"
        ) from None
    assert row is not None, "INSERT ... RETURNING gives back its row"
    return _from_row(row)


async def get(conn: PoolOrConnection, user_id: int) -> User | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
    return _from_row(row) if row else None


async def get_by_username(conn: PoolOrConnection, username: str) -> User | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE username = $1", username)
    return _from_row(row) if row else None


async def page(conn: PoolOrConnection, *, after_id: int | None, limit: int) -> list[User]:
    """Users in id order, starting after ``after_id``."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2", after_id or 0, limit)
    return [_from_row(row) for row in rows]


async def set_time_zone(conn: PoolOrConnection, user_id: int, time_zone: str | None) -> None:
    """The zone the pages show this user's times in (None: the browser's); checked by the caller."""
    await conn.execute("UPDATE users SET time_zone = $2 WHERE id = $1", user_id, time_zone)


async def set_password_hash(conn: PoolOrConnection, user_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def get_with_password_hash(conn: PoolOrConnection, username: str) -> tuple[User, str | None] | None:
    """The user named ``username`` and their password hash (None when they have no password)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = $1", username)
    if row is None:
        return None
    values = dict(row)
    password_hash = values.pop("password_hash")
    return User(**values), password_hash


@dataclass(frozen=True)
class SecondFactor:
    """A user's TOTP state: the confirmed secret, one awaiting confirmation, the last accepted time step."""

    secret: str | None
    pending: str | None
    last_step: int | None


async def second_factor(conn: PoolOrConnection, user_id: int) -> SecondFactor:
    row = await conn.fetchrow(
        "SELECT totp_secret, totp_pending_secret, totp_last_step FROM users WHERE id = $1", user_id
    )
    if row is None:
        return SecondFactor(None, None, None)
    return SecondFactor(row["totp_secret"], row["totp_pending_secret"], row["totp_last_step"])


async def set_pending_totp(conn: PoolOrConnection, user_id: int, secret: str | None) -> None:
    """Keep ``secret`` for enrolment until a code from it is entered (None: forget it)."""
    await conn.execute("UPDATE users SET totp_pending_secret = $2 WHERE id = $1", user_id, secret)


async def confirm_totp(conn: PoolOrConnection, user_id: int, secret: str, step: int) -> bool:
    """Make the pending ``secret`` the user's second factor; False when it is no longer the pending one."""
    row = await conn.fetchval(
        """
        UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, totp_last_step = $3
        WHERE id = $1 AND totp_pending_secret = $2 RETURNING id
        """,
        user_id,
        secret,
        step,
    )
    return row is not None


async def disable_totp(conn: PoolOrConnection, user_id: int) -> None:
    await conn.execute(
        "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_last_step = NULL WHERE id = $1",
        user_id,
    )


async def use_totp_step(conn: PoolOrConnection, user_id: int, step: int) -> bool:
    """Record that the code of time step ``step`` signed in; False when it (or a later one) already did."""
    row = await conn.fetchval(
        """
        UPDATE users SET totp_last_step = $2
        WHERE id = $1 AND totp_secret IS NOT NULL AND (totp_last_step IS NULL OR totp_last_step < $2)
        RETURNING id
        """,
        user_id,
        step,
    )
    return row is not None


async def get_password_hash(conn: PoolOrConnection, user_id: int) -> str | None:
    hashed: str | None = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
    return hashed
