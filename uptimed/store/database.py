"""The asyncpg pool and the schema: connect with a timeout, migrate step by step.

The schema grows by numbered steps, ``migrations/0001_initial.sql``,
``0002_web_pages.sql``, ...: step N takes a database from version N - 1 to
N, and ``schema_version`` records each version reached. ``schema.sql`` is the
same schema written out whole, for reading; a test keeps the two equal.
``migrations/README.md`` says how to add a step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg
import structlog

from uptimed.config import DatabaseSettings
from uptimed.errors import ServiceUnavailable, UptimedError
from uptimed.store import Connection

log = structlog.get_logger()

_SOURCE_TREE = Path(__file__).resolve().parents[2]

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
    except ValueError:
        # asyncpg could not read the DSN; its text may quote the DSN, a secret.
        raise ServiceUnavailable("postgresql", "the [database] dsn cannot be read: check its form") from None


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def schema_sql() -> str:
    """The text of schema.sql (the whole schema, for reading), from the installed package or the source tree."""
    packaged = resources.files("uptimed").joinpath("schema.sql")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (_SOURCE_TREE / "schema.sql").read_text(encoding="utf-8")


def schema_version(sql: str) -> int:
    """The ``-- schema-version: N`` that schema.sql declares."""
    match = re.search(r"^-- schema-version:\s*(\d+)\s*$", sql, re.MULTILINE)
    if not match:
        raise ValueError("schema.sql has no '-- schema-version: N' line")
    return int(match[1])


@dataclass(frozen=True)
class Step:
    """One file of ``migrations/``: ``0004_notification_attempts.sql`` takes a database to version 4."""

    version: int
    name: str
    sql: str


_STEP_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def steps() -> list[Step]:
    """Every migration step, in order; ValueError unless they are numbered 1, 2, 3 ... without a gap."""
    packaged = resources.files("uptimed").joinpath("migrations")
    folder: Traversable = packaged if packaged.is_dir() else _SOURCE_TREE / "migrations"
    found = sorted(
        (int(match[1]), entry.name, entry) for entry in folder.iterdir() if (match := _STEP_NAME.match(entry.name))
    )
    numbers = [number for number, _, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations/ must be numbered 0001, 0002, ... without gaps or repeats; found {numbers}")
    return [Step(number, name, entry.read_text(encoding="utf-8")) for number, name, entry in found]


class DatabaseTooNew(UptimedError):
    """The database was migrated by a newer uptimed: this one does not know its schema and changes nothing."""

    def __init__(self, version: int, known: int) -> None:
        super().__init__(
            f"postgresql: the database is at schema version {version}, newer than this uptimed knows "
            f"(up to {known}); run the newer uptimed, or point [database] dsn at another database. Nothing was changed."
        )
        self.version = version
        self.known = known


@dataclass(frozen=True)
class Migration:
    """What :func:`migrate` did."""

    version: int
    """The database's schema version now."""
    applied: tuple[str, ...]
    """The steps applied, in order (``0003_check_hours.sql``); empty when the database was up to date."""


async def _current_version(conn: Connection) -> int:
    # From pg_class itself, not to_regclass(): a backend's cache may still say "no such table" after another
    # process created it while this one waited for the migration lock (it holds no lock on the table).
    exists = await conn.fetchval(
        """
        SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relname = 'schema_version' AND n.nspname = ANY (current_schemas(false)))
        """
    )
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


async def migrate(pool: asyncpg.Pool, *, plan: Sequence[Step] | None = None) -> Migration:
    """Apply the steps of ``migrations/`` (or ``plan``) the database lacks, in order, each in its own transaction.

    Each step runs under a transaction-scoped advisory lock and first reads
    the version again, so processes migrating at once apply every step once;
    a step that fails leaves the database at the version before it.
    A database at a version newer than the last step raises :class:`DatabaseTooNew`.
    """
    known = list(plan) if plan is not None else steps()
    latest = known[-1].version
    async with pool.acquire() as conn:
        # At every start but the first after an upgrade there is nothing to do: one look, without the lock
        # (stepping through every step's transaction to find that out took ~60 ms of start-up).
        current = await _current_version(conn)
    if current > latest:
        raise DatabaseTooNew(current, latest)
    if current == latest:
        return Migration(latest, ())
    applied: list[str] = []
    for step in known:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
            current = await _current_version(conn)
            if current > latest:
                raise DatabaseTooNew(current, latest)
            if current >= step.version:
                continue
            await conn.execute(step.sql)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", step.version)
        log.info("database.migrated", step=step.name, schema_version=step.version)
        applied.append(step.name)
    return Migration(latest, tuple(applied))
