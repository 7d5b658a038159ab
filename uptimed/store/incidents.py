"""SQL for ``incidents``: opened when a monitor goes down, resolved when it is up again."""

from __future__ import annotations

import asyncpg


async def open_incident(conn: asyncpg.Connection, monitor_id: int, *, opened_at_ms: int, cause: str) -> int:
    """The id of the monitor's open incident, creating it if there is none."""
    return await conn.fetchval(
        """
        INSERT INTO incidents (monitor_id, opened_at, cause)
        VALUES ($1, to_timestamp($2 / 1000.0), $3)
        ON CONFLICT (monitor_id) WHERE resolved_at IS NULL DO UPDATE SET cause = incidents.cause
        RETURNING id
        """,
        monitor_id, opened_at_ms, cause,
    )


async def resolve_incident(conn: asyncpg.Connection, monitor_id: int, *, resolved_at_ms: int) -> int | None:
    """Resolve the monitor's open incident; its id, or None when none was open."""
    return await conn.fetchval(
        """
        UPDATE incidents SET resolved_at = to_timestamp($2 / 1000.0)
        WHERE monitor_id = $1 AND resolved_at IS NULL
        RETURNING id
        """,
        monitor_id, resolved_at_ms,
    )
