"""The asyncpg pool and the schema: connect with a timeout, migrate idempotently."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from uptimed.config import DatabaseSettings
from uptimed.errors import ServiceUnavailable

# Serialises concurrent `migrate` runs of several processes.
_MIGRATE_LOCK = 0x7570_7469  # "upti"


async def _init_connection(conn: asyncpg.Connection) -> None:
    for jtype in ("json", "jsonb"):
        await conn.set_type_codec(jtype, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset when a connection returns to the pool.

    asyncpg's default reset costs a round trip after every query
    (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL); uptimed holds no session
    state (its advisory lock is transaction-scoped) and an open transaction is
    still rolled back.
    """


async def connect(settings: DatabaseSettings) -> asyncpg.Pool:
    """A pool to the configured database; :class:`ServiceUnavailable` with the reason when it cannot."""
    try:
        return await asyncpg.create_pool(
            settings.dsn.get_secret_value(),
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            timeout=settings.connect_timeout,
            command_timeout=60,
            init=_init_connection,
            reset=_keep_session,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise ServiceUnavailable("postgresql", f"cannot connect: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def schema_sql() -> str:
    """The text of schema.sql, from the installed package or the source tree."""
    packaged = resources.files("uptimed").joinpath("schema.sql")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "schema.sql").read_text(encoding="utf-8")


def schema_version(sql: str) -> int:
    match = re.search(r"^-- schema-version:\s*(\d+)\s*$", sql, re.MULTILINE)
    if not match:
        raise ValueError("schema.sql has no '-- schema-version: N' line")
    return int(match[1])


@dataclass(frozen=True)
class Migration:
    version: int
    applied: bool
    """False when the database already had this version: nothing was changed."""


async def migrate(pool: asyncpg.Pool) -> Migration:
    """Apply schema.sql in one transaction unless its version is already recorded."""
    sql = schema_sql()
    version = schema_version(sql)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
        exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        if exists and await conn.fetchval("SELECT max(version) FROM schema_version") == version:
            return Migration(version, applied=False)
        await conn.execute(sql)
        await conn.execute("INSERT INTO schema_version (version) VALUES ($1) ON CONFLICT DO NOTHING", version)
    return Migration(version, applied=True)
