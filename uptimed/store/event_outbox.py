"""SQL for ``event_outbox``: events stored with the state that made them, published after."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from uptimed.event import MonitorEvent
from uptimed.store import Connection, PoolOrConnection


async def add_many(conn: Connection, events: Sequence[MonitorEvent]) -> None:
    if not events:
        return
    await conn.execute(
        """
        INSERT INTO event_outbox (event_id, monitor_id, payload)
        SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::jsonb[])
        ON CONFLICT (event_id) DO NOTHING
        """,
        [e.eventId for e in events],
        [e.websiteId for e in events],
        [e.model_dump(mode="json") for e in events],
    )


async def mark_published(conn: PoolOrConnection, event_ids: Sequence[uuid.UUID]) -> None:
    if event_ids:
        await conn.execute(
            "UPDATE event_outbox SET published_at = now() WHERE event_id = ANY($1::uuid[])", list(event_ids)
        )


async def unpublished(conn: PoolOrConnection, *, older_than_s: float, limit: int = 1000) -> list[Any]:
    """Payloads of events not yet published, in the order they were made (a crash or the broker away)."""
    rows = await conn.fetch(
        """
        SELECT payload FROM event_outbox
        WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1)
        ORDER BY seq LIMIT $2
        """,
        older_than_s,
        limit,
    )
    return [row["payload"] for row in rows]
