"""SQL for the ``monitors`` table (and the users that own config-declared monitors)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from uptimed.monitor import Monitor, MonitorFields, MonitorSpec

_COLUMNS = """
    id, owner_id, config_key, name, kind, target, interval_s, timeout_s, regions,
    failure_threshold, success_threshold, quorum, slow_threshold_ms, repeat_interval_s,
    options, enabled, extract(epoch FROM updated_at) AS version
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
        enabled=row["enabled"],
        **row["options"],
    )


def _values(fields: MonitorFields) -> tuple[Any, ...]:
    options = {"http": fields.http.model_dump(mode="json", exclude_defaults=True)}
    return (
        fields.name, fields.kind.value, fields.target, fields.interval, fields.timeout, list(fields.regions),
        fields.failure_threshold, fields.success_threshold, fields.quorum, fields.slow_threshold_ms,
        fields.repeat_interval, options, fields.enabled,
    )


async def list_enabled(conn: asyncpg.Pool | asyncpg.Connection) -> list[Monitor]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM monitors WHERE enabled ORDER BY id")
    return [monitor_from_row(row) for row in rows]


async def get_many(conn: asyncpg.Pool | asyncpg.Connection, ids: Iterable[int]) -> dict[int, Monitor]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM monitors WHERE id = ANY($1::bigint[])", list(ids))
    return {row["id"]: monitor_from_row(row) for row in rows}


async def create(conn: asyncpg.Pool | asyncpg.Connection, owner_id: int, fields: MonitorFields) -> Monitor:
    row = await conn.fetchrow(
        f"""
        INSERT INTO monitors (owner_id, name, kind, target, interval_s, timeout_s, regions,
                              failure_threshold, success_threshold, quorum, slow_threshold_ms,
                              repeat_interval_s, options, enabled)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        RETURNING {_COLUMNS}
        """,
        owner_id, *_values(fields),
    )
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
        owner_ids = dict(await conn.fetch("SELECT username, id FROM users WHERE username = ANY($1::text[])", owners))
        created = updated = 0
        kept: list[int] = []
        for spec in specs:
            row = await conn.fetchrow(
                """
                INSERT INTO monitors (owner_id, config_key, name, kind, target, interval_s, timeout_s, regions,
                                      failure_threshold, success_threshold, quorum, slow_threshold_ms,
                                      repeat_interval_s, options, enabled)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                ON CONFLICT (owner_id, config_key) DO UPDATE SET
                    name = EXCLUDED.name, kind = EXCLUDED.kind, target = EXCLUDED.target,
                    interval_s = EXCLUDED.interval_s, timeout_s = EXCLUDED.timeout_s, regions = EXCLUDED.regions,
                    failure_threshold = EXCLUDED.failure_threshold, success_threshold = EXCLUDED.success_threshold,
                    quorum = EXCLUDED.quorum, slow_threshold_ms = EXCLUDED.slow_threshold_ms,
                    repeat_interval_s = EXCLUDED.repeat_interval_s, options = EXCLUDED.options,
                    enabled = EXCLUDED.enabled, updated_at = now()
                WHERE (monitors.name, monitors.kind, monitors.target, monitors.interval_s, monitors.timeout_s,
                       monitors.regions, monitors.failure_threshold, monitors.success_threshold, monitors.quorum,
                       monitors.slow_threshold_ms, monitors.repeat_interval_s, monitors.options, monitors.enabled)
                   IS DISTINCT FROM
                      (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.target, EXCLUDED.interval_s, EXCLUDED.timeout_s,
                       EXCLUDED.regions, EXCLUDED.failure_threshold, EXCLUDED.success_threshold, EXCLUDED.quorum,
                       EXCLUDED.slow_threshold_ms, EXCLUDED.repeat_interval_s, EXCLUDED.options, EXCLUDED.enabled)
                RETURNING id, (xmax = 0) AS inserted
                """,
                owner_ids[spec.owner], spec.stable_key, *_values(spec),
            )
            if row is None:  # unchanged
                kept.append(
                    await conn.fetchval(
                        "SELECT id FROM monitors WHERE owner_id = $1 AND config_key = $2",
                        owner_ids[spec.owner], spec.stable_key,
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
