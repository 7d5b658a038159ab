"""SQL for ``maintenance_windows``: planned work on a user's monitors.

Monitors are chosen by id (``monitor_ids``), by tag, or all of the owner's;
an id of a monitor deleted since matches nothing, so the list never needs
cleaning up, and a read leaves such ids out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from uptimed.maintenance import MaintenanceIn, MaintenanceSpec, MaintenanceWindow
from uptimed.store import Connection, PoolOrConnection

# Ids of monitors the owner no longer has are left out, in the stored order.
_COLUMNS = """
    w.id, w.owner_id, w.config_key, w.name, w.starts_at, w.ends_at, w.cron, w.days, w.at_time, w.duration_s,
    w.time_zone, w.all_monitors, w.tags,
    ARRAY(SELECT m.id FROM monitors m WHERE m.owner_id = w.owner_id AND m.id = ANY(w.monitor_ids)
          ORDER BY array_position(w.monitor_ids, m.id)) AS monitor_ids
"""


def window_from_row(row: asyncpg.Record) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=row["id"],
        owner_id=row["owner_id"],
        config_key=row["config_key"],
        name=row["name"],
        start=row["starts_at"],
        end=row["ends_at"],
        cron=row["cron"],
        days=list(row["days"] or []),
        at=row["at_time"],
        duration=row["duration_s"],
        time_zone=row["time_zone"],
        all_monitors=row["all_monitors"],
        tags=list(row["tags"]),
        monitor_ids=list(row["monitor_ids"]),
    )


def _values(window: MaintenanceIn | MaintenanceSpec, monitor_ids: Sequence[int]) -> tuple[Any, ...]:
    return (
        window.name,
        window.start,
        window.end,
        window.cron,
        list(window.days) or None,
        window.at,
        window.duration,
        window.time_zone,
        window.all_monitors,
        list(monitor_ids),
        list(window.tags),
    )


async def every(conn: PoolOrConnection, *, ended_before: datetime | None = None) -> list[MaintenanceWindow]:
    """Every user's windows (for the evaluator), without one-off windows that ended before ``ended_before``."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM maintenance_windows w"
        " WHERE $1::timestamptz IS NULL OR w.ends_at IS NULL OR w.ends_at >= $1 ORDER BY w.id",
        ended_before,
    )
    return [window_from_row(row) for row in rows]


async def for_owner(conn: PoolOrConnection, owner_id: int) -> list[MaintenanceWindow]:
    """The owner's windows, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM maintenance_windows w WHERE w.owner_id = $1 ORDER BY w.id", owner_id
    )
    return [window_from_row(row) for row in rows]


async def get_owned(conn: PoolOrConnection, owner_id: int, window_id: int) -> MaintenanceWindow | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM maintenance_windows w WHERE w.id = $1 AND w.owner_id = $2", window_id, owner_id
    )
    return window_from_row(row) if row else None


async def create(conn: PoolOrConnection, owner_id: int, window: MaintenanceIn) -> int:
    """Store a window of ``owner_id`` (its monitor ids checked already); its id."""
    window_id: int = await conn.fetchval(
        """
        INSERT INTO maintenance_windows (owner_id, name, starts_at, ends_at, cron, days, at_time, duration_s,
                                         time_zone, all_monitors, monitor_ids, tags)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        RETURNING id
        """,
        owner_id,
        *_values(window, window.monitor_ids),
    )
    return window_id


async def update_owned(conn: PoolOrConnection, owner_id: int, window_id: int, window: MaintenanceIn) -> bool:
    """Replace one of the owner's windows that the config file does not declare; False if there is none."""
    status = await conn.execute(
        """
        UPDATE maintenance_windows SET name = $3, starts_at = $4, ends_at = $5, cron = $6, days = $7, at_time = $8,
            duration_s = $9, time_zone = $10, all_monitors = $11, monitor_ids = $12, tags = $13, updated_at = now()
        WHERE id = $1 AND owner_id = $2 AND config_key IS NULL
        """,
        window_id,
        owner_id,
        *_values(window, window.monitor_ids),
    )
    return status.endswith(" 1")


async def sync_from_config(conn: Connection, specs: Sequence[MaintenanceSpec]) -> int:
    """Make the config-declared windows match the file (inside the caller's transaction); how many it declares.

    Matched by (owner, key); monitors by their config keys. One removed from the file is deleted: a
    window has no history worth keeping. Owners and monitors must exist already (sync monitors first).
    """
    kept: list[int] = []
    for spec in specs:
        # An owner the file names only here is created, as one of its monitors would create it.
        owner_id = await conn.fetchval(
            """
            INSERT INTO users (username, email) VALUES ($1, $1 || '@localhost')
            ON CONFLICT (username) DO UPDATE SET username = EXCLUDED.username
            RETURNING id
            """,
            spec.owner,
        )
        monitor_ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM monitors WHERE owner_id = $1 AND config_key = ANY($2::text[]) ORDER BY id",
                owner_id,
                list(spec.monitors),
            )
        ]
        window_id = await conn.fetchval(
            """
            INSERT INTO maintenance_windows (owner_id, config_key, name, starts_at, ends_at, cron, days, at_time,
                                             duration_s, time_zone, all_monitors, monitor_ids, tags)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (owner_id, config_key) DO UPDATE SET
                name = EXCLUDED.name, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
                cron = EXCLUDED.cron, days = EXCLUDED.days, at_time = EXCLUDED.at_time,
                duration_s = EXCLUDED.duration_s, time_zone = EXCLUDED.time_zone,
                all_monitors = EXCLUDED.all_monitors, monitor_ids = EXCLUDED.monitor_ids, tags = EXCLUDED.tags,
                updated_at = now()
            RETURNING id
            """,
            owner_id,
            spec.stable_key,
            *_values(spec, monitor_ids),
        )
        kept.append(window_id)
    await conn.execute(
        "DELETE FROM maintenance_windows WHERE config_key IS NOT NULL AND NOT (id = ANY($1::bigint[]))", kept
    )
    return len(kept)


async def delete_owned(conn: PoolOrConnection, owner_id: int, window_id: int) -> bool:
    """Delete one of the owner's windows that the config file does not declare; False if there is none."""
    deleted = await conn.fetchval(
        "DELETE FROM maintenance_windows WHERE id = $1 AND owner_id = $2 AND config_key IS NULL RETURNING id",
        window_id,
        owner_id,
    )
    return deleted is not None
