"""SQL for ``monitor_state``: the evaluator's memory of each monitor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg


async def load_many(conn: asyncpg.Pool | asyncpg.Connection, monitor_ids: Iterable[int]) -> dict[int, Any]:
    rows = await conn.fetch(
        "SELECT monitor_id, state FROM monitor_state WHERE monitor_id = ANY($1::bigint[])", list(monitor_ids)
    )
    return {row["monitor_id"]: row["state"] for row in rows}


async def save_many(conn: asyncpg.Connection, states: Mapping[int, Any]) -> None:
    """Upsert JSON-ready states, one round trip."""
    if not states:
        return
    await conn.execute(
        """
        INSERT INTO monitor_state (monitor_id, state, updated_at)
        SELECT m, s, now() FROM unnest($1::bigint[], $2::jsonb[]) AS x(m, s)
        ON CONFLICT (monitor_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()
        """,
        list(states),
        list(states.values()),
    )
