"""SQL for ``monitor_state``: the evaluator's memory of each monitor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from uptimed.store import PoolOrConnection
from uptimed.store.statements import Statement, execute


async def load_many(conn: PoolOrConnection, monitor_ids: Iterable[int]) -> dict[int, Any]:
    rows = await conn.fetch(
        "SELECT monitor_id, state FROM monitor_state WHERE monitor_id = ANY($1::bigint[])", list(monitor_ids)
    )
    return {row["monitor_id"]: row["state"] for row in rows}


def save_statement(states: Mapping[int, Any], wakes: Mapping[int, int | None] | None = None) -> Statement | None:
    """Upsert JSON-ready states with their wake times (ms since epoch, or None); None: no states."""
    if not states:
        return None
    wakes = wakes or {}
    return Statement(
        """
        INSERT INTO monitor_state (monitor_id, state, wake_at, updated_at)
        SELECT m, s, to_timestamp(w / 1000.0), now() FROM unnest($1::bigint[], $2::jsonb[], $3::bigint[]) AS x(m, s, w)
        ON CONFLICT (monitor_id) DO UPDATE SET state = EXCLUDED.state, wake_at = EXCLUDED.wake_at, updated_at = now()
        """,
        (list(states), list(states.values()), [wakes.get(mid) for mid in states]),
    )


async def save_many(
    conn: PoolOrConnection, states: Mapping[int, Any], wakes: Mapping[int, int | None] | None = None
) -> None:
    """:func:`save_statement`, in one round trip."""
    await execute(conn, save_statement(states, wakes))


async def wake_times(conn: PoolOrConnection) -> dict[int, int]:
    """Every monitor's next wake time, ms since epoch (the owners of its partition filter them)."""
    rows = await conn.fetch(
        "SELECT monitor_id, (extract(epoch FROM wake_at) * 1000)::bigint AS wake_ms FROM monitor_state"
        " WHERE wake_at IS NOT NULL"
    )
    return {row["monitor_id"]: row["wake_ms"] for row in rows}


def wakes_statement(wakes: Mapping[int, int | None]) -> Statement | None:
    """Move the wake times of monitors whose state is unchanged (ms since epoch, or None); None: none to move."""
    if not wakes:
        return None
    return Statement(
        """
        UPDATE monitor_state SET wake_at = to_timestamp(x.w / 1000.0)
        FROM unnest($1::bigint[], $2::bigint[]) AS x(m, w) WHERE monitor_id = x.m
        """,
        (list(wakes), list(wakes.values())),
    )
