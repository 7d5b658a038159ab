"""SQL for the ``monitors`` table (and the users that own config-declared monitors)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import BaseModel

from uptimed.channels.registry import storable_config
from uptimed.monitor import Monitor, MonitorFields, MonitorSpec
from uptimed.store import PoolOrConnection
from uptimed.store.owned import OwnedTable

PING_TOKEN_BYTES = 18
"""144 random bits: a ping URL cannot be guessed."""

_COLUMNS = """
    id, owner_id, config_key, name, kind, target, interval_s, timeout_s, regions,
    failure_threshold, success_threshold, quorum, slow_threshold_ms, repeat_interval_s,
    options, enabled, tags, notify_integrations, badge_key, escalation_policy_id, ping_token,
    extract(epoch FROM updated_at) AS version
"""


def monitor_from_row(row: asyncpg.Record) -> Monitor:
    return Monitor(
        id=row["id"],
        owner_id=row["owner_id"],
        config_key=row["config_key"],
        name=row["name"],
        kind=row["kind"],
        target=row["target"],
        interval=row["interval_s"],
        timeout=row["timeout_s"],
        regions=list(row["regions"]),
        failure_threshold=row["failure_threshold"],
        success_threshold=row["success_threshold"],
        quorum=row["quorum"],
        slow_threshold_ms=row["slow_threshold_ms"],
        repeat_interval=row["repeat_interval_s"],
        escalation_policy_id=row["escalation_policy_id"],
        enabled=row["enabled"],
        tags=list(row["tags"]),
        notify_integrations=None if row["notify_integrations"] is None else list(row["notify_integrations"]),
        badge_key=row["badge_key"],
        ping_token=row["ping_token"],
        **row["options"],
    )


def _options(fields: MonitorFields) -> dict[str, Any]:
    """Every kind's options as JSON to store, secrets in clear (never log it)."""
    options: dict[str, Any] = {"http": fields.http.model_dump(mode="json", exclude_defaults=True)}
    for kind, value in fields.kind_options().items():
        options[kind] = storable_config(value) if isinstance(value, BaseModel) else value
    return options


def new_ping_token(fields: MonitorFields) -> str | None:
    """A fresh random ping token for a pushed kind (kept only where the row has none yet); None otherwise."""
    return None if fields.scheduled else secrets.token_urlsafe(PING_TOKEN_BYTES)


def _values(fields: MonitorFields) -> tuple[Any, ...]:
    options = _options(fields)
    return (
        fields.name,
        fields.kind,
        fields.target,
        fields.interval,
        fields.timeout,
        list(fields.regions),
        fields.failure_threshold,
        fields.success_threshold,
        fields.quorum,
        fields.slow_threshold_ms,
        fields.repeat_interval,
        options,
        fields.enabled,
        list(fields.tags),
    )


async def rows_of(conn: PoolOrConnection, ids: Iterable[int] | None = None) -> list[asyncpg.Record]:
    """Monitor rows, every one or those of ``ids``, each with its options as jsonb text (see ``MonitorFeed``).

    The options are compared as text because decoded ``{"json_equals": 1} == {"json_equals": true}``.
    """
    if ids is None:
        return await conn.fetch(f"SELECT {_COLUMNS}, options::text AS options_key FROM monitors ORDER BY id")
    return await conn.fetch(
        f"SELECT {_COLUMNS}, options::text AS options_key FROM monitors WHERE id = ANY($1::bigint[])", list(ids)
    )


async def count_enabled(conn: PoolOrConnection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM monitors WHERE enabled")
    return count


async def get_many(conn: PoolOrConnection, ids: Iterable[int]) -> dict[int, Monitor]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM monitors WHERE id = ANY($1::bigint[])", list(ids))
    return {row["id"]: monitor_from_row(row) for row in rows}


async def get_by_ping_token(conn: PoolOrConnection, token: str) -> Monitor | None:
    """The monitor whose ping URL holds ``token``, if any (whatever its owner: the token is the credential)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM monitors WHERE ping_token = $1", token)
    return monitor_from_row(row) if row else None


async def create(
    conn: PoolOrConnection,
    owner_id: int,
    fields: MonitorFields,
    *,
    notify: Sequence[int] | None = None,
) -> Monitor:
    """A new monitor of ``owner_id``; ``notify``: the integrations it notifies (None: all of them)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO monitors (owner_id, name, kind, target, interval_s, timeout_s, regions,
                              failure_threshold, success_threshold, quorum, slow_threshold_ms,
                              repeat_interval_s, options, enabled, tags, notify_integrations, escalation_policy_id,
                              ping_token)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
        RETURNING {_COLUMNS}
        """,
        owner_id,
        *_values(fields),
        None if notify is None else list(notify),
        fields.escalation_policy_id,
        new_ping_token(fields),
    )
    assert row is not None, "INSERT ... RETURNING gives back its row"
    return monitor_from_row(row)


@dataclass(frozen=True)
class SyncResult:
    created: int
    updated: int
    disabled: int
    users_created: list[str]


async def sync_from_config(pool: asyncpg.Pool, specs: Sequence[MonitorSpec]) -> SyncResult:
    """Make the database's config-declared monitors match the file, in one transaction.

    Monitors are matched by (owner, key), so their history survives edits;
    a monitor removed from the file is disabled, not deleted. Owners named in
    the file that do not exist yet are created.
    """
    async with pool.acquire() as conn, conn.transaction():
        owners = sorted({spec.owner for spec in specs})
        created_users = await conn.fetch(
            """
            INSERT INTO users (username, email)
            SELECT name, name || '@localhost' FROM unnest($1::text[]) AS name
            ON CONFLICT (username) DO NOTHING
            RETURNING username
            """,
            owners,
        )
        rows = await conn.fetch("SELECT username, id FROM users WHERE username = ANY($1::text[])", owners)
        owner_ids: dict[str, int] = {row["username"]: row["id"] for row in rows}
        created = updated = 0
        kept: list[int] = []
        for spec in specs:
            row = await conn.fetchrow(
                """
                INSERT INTO monitors (owner_id, config_key, name, kind, target, interval_s, timeout_s, regions,
                                      failure_threshold, success_threshold, quorum, slow_threshold_ms,
                                      repeat_interval_s, options, enabled, tags, ping_token)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                ON CONFLICT (owner_id, config_key) DO UPDATE SET
                    name = EXCLUDED.name, kind = EXCLUDED.kind, target = EXCLUDED.target,
                    interval_s = EXCLUDED.interval_s, timeout_s = EXCLUDED.timeout_s, regions = EXCLUDED.regions,
                    failure_threshold = EXCLUDED.failure_threshold, success_threshold = EXCLUDED.success_threshold,
                    quorum = EXCLUDED.quorum, slow_threshold_ms = EXCLUDED.slow_threshold_ms,
                    repeat_interval_s = EXCLUDED.repeat_interval_s, options = EXCLUDED.options,
                    enabled = EXCLUDED.enabled, tags = EXCLUDED.tags, updated_at = now(),
                    ping_token = coalesce(monitors.ping_token, EXCLUDED.ping_token)
                WHERE (monitors.name, monitors.kind, monitors.target, monitors.interval_s, monitors.timeout_s,
                       monitors.regions, monitors.failure_threshold, monitors.success_threshold, monitors.quorum,
                       monitors.slow_threshold_ms, monitors.repeat_interval_s, monitors.options, monitors.enabled,
                       monitors.tags)
                   IS DISTINCT FROM
                      (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.target, EXCLUDED.interval_s, EXCLUDED.timeout_s,
                       EXCLUDED.regions, EXCLUDED.failure_threshold, EXCLUDED.success_threshold, EXCLUDED.quorum,
                       EXCLUDED.slow_threshold_ms, EXCLUDED.repeat_interval_s, EXCLUDED.options, EXCLUDED.enabled,
                       EXCLUDED.tags)
                   OR (monitors.ping_token IS NULL AND EXCLUDED.ping_token IS NOT NULL)
                RETURNING id, (xmax = 0) AS inserted
                """,
                owner_ids[spec.owner],
                spec.stable_key,
                *_values(spec),
                new_ping_token(spec),
            )
            if row is None:  # unchanged
                kept.append(
                    await conn.fetchval(
                        "SELECT id FROM monitors WHERE owner_id = $1 AND config_key = $2",
                        owner_ids[spec.owner],
                        spec.stable_key,
                    )
                )
                continue
            kept.append(row["id"])
            if row["inserted"]:
                created += 1
            else:
                updated += 1
        disabled = await conn.fetch(
            """
            UPDATE monitors SET enabled = false, updated_at = now()
            WHERE config_key IS NOT NULL AND enabled AND NOT (id = ANY($1::bigint[]))
            RETURNING id
            """,
            kept,
        )
    return SyncResult(created, updated, len(disabled), [r["username"] for r in created_users])


# Reads and changes through the API: every one scoped to the owner, so another
# user's monitor is indistinguishable from one that does not exist. Monitors
# declared in the config file (config_key set) are never changed here.

_OWNED_COLUMNS = """
    m.id, m.owner_id, m.config_key, m.name, m.kind, m.target, m.interval_s, m.timeout_s, m.regions,
    m.failure_threshold, m.success_threshold, m.quorum, m.slow_threshold_ms, m.repeat_interval_s,
    m.options, m.enabled, m.tags, m.notify_integrations, m.badge_key, m.escalation_policy_id, m.ping_token,
    m.created_at, m.updated_at
"""


@dataclass(frozen=True)
class MonitorOverview:
    """A monitor with what a dashboard shows beside it."""

    monitor: Monitor
    created_at: Any
    updated_at: Any
    state: Any
    """The evaluator's stored state (JSON), None before its first result."""
    last_checked_at: Any
    last_response_time_ms: float | None
    uptime_24h: float | None
    uptime_7d: float | None
    uptime_30d: float | None
    """Percent of checks that were up, None without checks in the window."""


def _overview(row: asyncpg.Record) -> MonitorOverview:
    return MonitorOverview(
        monitor=monitor_from_row(row),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        state=row["state"],
        last_checked_at=row["last_checked_at"],
        last_response_time_ms=row["last_response_time_ms"],
        uptime_24h=row["uptime_24h"],
        uptime_7d=row["uptime_7d"],
        uptime_30d=row["uptime_30d"],
    )


# One statement for a whole page: the latest check from the (monitor_id,
# checked_at) index, uptime from the hourly roll-ups (check_hours): at most
# 720 rows a region per monitor for 30 days instead of every check. Windows
# are whole hours, the current one included.
_OVERVIEW = f"""
    SELECT {_OWNED_COLUMNS}, s.state, last.checked_at AS last_checked_at,
           last.response_time_ms::float8 AS last_response_time_ms,
           round(100.0 * w.up_24h / nullif(w.n_24h, 0), 3)::float8 AS uptime_24h,
           round(100.0 * w.up_7d / nullif(w.n_7d, 0), 3)::float8 AS uptime_7d,
           round(100.0 * w.up_30d / nullif(w.n_30d, 0), 3)::float8 AS uptime_30d
    FROM monitors m
    LEFT JOIN monitor_state s ON s.monitor_id = m.id
    LEFT JOIN LATERAL (
        SELECT c.checked_at, c.response_time_ms FROM checks c
        WHERE c.monitor_id = m.id ORDER BY c.checked_at DESC LIMIT 1
    ) last ON true
    LEFT JOIN LATERAL (
        SELECT sum(h.checks) FILTER (WHERE h.hour > now() - interval '1 day') AS n_24h,
               sum(h.up) FILTER (WHERE h.hour > now() - interval '1 day') AS up_24h,
               sum(h.checks) FILTER (WHERE h.hour > now() - interval '7 days') AS n_7d,
               sum(h.up) FILTER (WHERE h.hour > now() - interval '7 days') AS up_7d,
               sum(h.checks) AS n_30d,
               sum(h.up) AS up_30d
        FROM check_hours h
        WHERE h.monitor_id = m.id AND h.hour > now() - interval '30 days'
    ) w ON true
"""


@dataclass(frozen=True)
class Filter:
    """Which of the owner's monitors a list shows; every part optional, all of them must hold."""

    tag: str | None = None
    status: str | None = None
    """up, down, slow, paused or unknown: as the status badge says it."""
    search: str | None = None
    """Part of the name or the target, in any case."""


# The status a badge shows (rules/status.py says the same from the state; silence is left aside here).
_SHOWN_STATUS = """
    CASE WHEN NOT m.enabled THEN 'paused'
         WHEN s.state->>'status' = 'up' AND coalesce((s.state->>'slow')::boolean, false) THEN 'slow'
         ELSE coalesce(s.state->>'status', 'unknown') END
"""


async def page_overviews(
    conn: PoolOrConnection,
    owner_id: int,
    *,
    after_id: int | None,
    limit: int,
    only: Filter | None = None,
) -> list[MonitorOverview]:
    """The owner's monitors in id order, after ``after_id``, each with its status and uptime; ``only`` filters."""
    only = only or Filter()
    pattern = (
        None
        if not only.search
        else "%" + only.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    )
    rows = await conn.fetch(
        f"""
        {_OVERVIEW}
        WHERE m.owner_id = $1 AND m.id > $2
          AND ($4::text IS NULL OR $4 = ANY(m.tags))
          AND ($5::text IS NULL OR {_SHOWN_STATUS} = $5)
          AND ($6::text IS NULL OR m.name ILIKE $6 OR m.target ILIKE $6)
        ORDER BY m.id LIMIT $3
        """,
        owner_id,
        after_id or 0,
        limit,
        only.tag,
        only.status,
        pattern,
    )
    return [_overview(row) for row in rows]


async def owned_ids(conn: PoolOrConnection, owner_id: int) -> list[int]:
    """The ids of the owner's monitors."""
    return [row["id"] for row in await conn.fetch("SELECT id FROM monitors WHERE owner_id = $1 ORDER BY id", owner_id)]


async def owner_tags(conn: PoolOrConnection, owner_id: int) -> list[str]:
    """Every tag on the owner's monitors, sorted."""
    rows = await conn.fetch(
        "SELECT DISTINCT unnest(tags) AS tag FROM monitors WHERE owner_id = $1 ORDER BY 1", owner_id
    )
    return [row["tag"] for row in rows]


async def get_overview(conn: PoolOrConnection, owner_id: int, monitor_id: int) -> MonitorOverview | None:
    row = await conn.fetchrow(f"{_OVERVIEW} WHERE m.owner_id = $1 AND m.id = $2", owner_id, monitor_id)
    return _overview(row) if row else None


async def get_owned(conn: PoolOrConnection, owner_id: int, monitor_id: int) -> Monitor | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM monitors WHERE id = $1 AND owner_id = $2", monitor_id, owner_id)
    return monitor_from_row(row) if row else None


async def update_owned(
    conn: PoolOrConnection,
    owner_id: int,
    monitor_id: int,
    fields: MonitorFields,
    *,
    notify: Sequence[int] | None = None,
) -> Monitor | None:
    """Replace every field of one of the owner's API-created monitors, its routing too; None if there is none."""
    row = await conn.fetchrow(
        f"""
        UPDATE monitors SET name = $3, kind = $4, target = $5, interval_s = $6, timeout_s = $7, regions = $8,
            failure_threshold = $9, success_threshold = $10, quorum = $11, slow_threshold_ms = $12,
            repeat_interval_s = $13, options = $14, enabled = $15, tags = $16, notify_integrations = $17,
            escalation_policy_id = $18, updated_at = now(), ping_token = coalesce(ping_token, $19)
        WHERE id = $1 AND owner_id = $2 AND config_key IS NULL
        RETURNING {_COLUMNS}
        """,
        monitor_id,
        owner_id,
        *_values(fields),
        None if notify is None else list(notify),
        fields.escalation_policy_id,
        new_ping_token(fields),
    )
    return monitor_from_row(row) if row else None


async def set_badge_key(conn: PoolOrConnection, owner_id: int, monitor_id: int, key: str | None) -> Monitor | None:
    """Opt one of the owner's monitors in to public badges under ``key`` (None: out); None if there is none."""
    row = await conn.fetchrow(
        f"UPDATE monitors SET badge_key = $3 WHERE id = $1 AND owner_id = $2 RETURNING {_COLUMNS}",
        monitor_id,
        owner_id,
        key,
    )
    return monitor_from_row(row) if row else None


async def get_by_badge_key(conn: PoolOrConnection, key: str) -> Monitor | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM monitors WHERE badge_key = $1", key)
    return monitor_from_row(row) if row else None


_owned = OwnedTable("monitors", _COLUMNS, monitor_from_row)

toggle_owned = _owned.toggle
"""Pause or resume one of the owner's API-created monitors; the monitor after, None if there is none."""

delete_owned = _owned.delete
"""Delete one of the owner's API-created monitors with its checks, state and incidents."""

count_made = _owned.count_made
"""How many monitors the owner made through the API or the pages."""

lock_owner = _owned.lock_owner
"""The owner's lock on adding monitors, until the transaction ends."""
