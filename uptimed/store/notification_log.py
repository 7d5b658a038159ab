"""SQL for ``notification_log``: one row per (event, integration), every attempt on record.

The row is written as a PENDING intent before the event's offset is
committed; the unique key on (event id, integration id) makes a redelivered
event a no-op. Deliveries claim due rows with a lease, so several processes
share the work and a crashed one's rows come due again when the lease ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from uptimed.bus.messages import MonitorEvent


@dataclass(frozen=True)
class Intent:
    event: MonitorEvent
    integration_id: int


async def add_intents(conn: asyncpg.Connection, intents: Sequence[Intent]) -> int:
    """Insert PENDING rows, skipping (event, integration) pairs already recorded; returns rows added."""
    if not intents:
        return 0
    status = await conn.execute(
        """
        INSERT INTO notification_log (event_id, event_type, integration_id, user_id, monitor_id, payload)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::jsonb[])
        ON CONFLICT (event_id, integration_id) DO NOTHING
        """,
        [i.event.eventId for i in intents],
        [i.event.type.value for i in intents],
        [i.integration_id for i in intents],
        [i.event.userId for i in intents],
        [i.event.websiteId for i in intents],
        [i.event.model_dump(mode="json") for i in intents],
    )
    return int(status.rsplit(" ", 1)[1])


@dataclass(frozen=True)
class Delivery:
    """A claimed row: one event to deliver through one integration."""

    id: int
    event_id: uuid.UUID
    integration_id: int
    attempts: int
    payload: dict[str, Any]
    type: str
    config: dict[str, Any]
    enabled: bool


async def claim_due(pool: asyncpg.Pool, *, limit: int, lease_s: float) -> list[Delivery]:
    """Take up to ``limit`` due PENDING / RETRYING rows for ``lease_s`` seconds, oldest first."""
    rows = await pool.fetch(
        """
        WITH due AS (
            SELECT id FROM notification_log
            WHERE status IN ('PENDING', 'RETRYING') AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE notification_log n SET next_attempt_at = now() + make_interval(secs => $2), updated_at = now()
        FROM due, integrations i
        WHERE n.id = due.id AND i.id = n.integration_id
        RETURNING n.id, n.event_id, n.integration_id, n.attempts, n.payload, i.type, i.config, i.enabled
        """,
        limit, lease_s,
    )
    return [Delivery(**dict(row)) for row in rows]


async def mark_sent(pool: asyncpg.Pool, delivery_id: int) -> None:
    await pool.execute(
        """
        UPDATE notification_log
        SET status = 'SENT', attempts = attempts + 1, sent_at = now(), updated_at = now(), error_message = NULL
        WHERE id = $1
        """,
        delivery_id,
    )


async def mark_retrying(pool: asyncpg.Pool, delivery_id: int, *, delay_s: float, error: str) -> None:
    await pool.execute(
        """
        UPDATE notification_log
        SET status = 'RETRYING', attempts = attempts + 1, error_message = $3, updated_at = now(),
            next_attempt_at = now() + make_interval(secs => $2)
        WHERE id = $1
        """,
        delivery_id, delay_s, error[:2000],
    )


async def mark_failed(pool: asyncpg.Pool, delivery_id: int, *, error: str, attempted: bool = True) -> None:
    await pool.execute(
        """
        UPDATE notification_log
        SET status = 'FAILED', attempts = attempts + $3::int, error_message = $2, updated_at = now()
        WHERE id = $1
        """,
        delivery_id, error[:2000], 1 if attempted else 0,
    )


async def postpone(pool: asyncpg.Pool, delivery_id: int, *, delay_s: float) -> None:
    """Move a claimed row later without counting an attempt (its destination's rate limit)."""
    await pool.execute(
        "UPDATE notification_log SET next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1",
        delivery_id, delay_s,
    )


async def next_due_in(pool: asyncpg.Pool) -> float | None:
    """Seconds until the next PENDING / RETRYING row is due (<= 0: now), None when there is none."""
    return await pool.fetchval(
        """
        SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM notification_log
        WHERE status IN ('PENDING', 'RETRYING')
        """
    )


@dataclass(frozen=True)
class LogEntry:
    """A row of the log as its user sees it: no payload, no lease."""

    id: int
    event_id: uuid.UUID
    event_type: str
    integration_id: int
    integration_type: str
    monitor_id: int | None
    status: str
    attempts: int
    error_message: str | None
    created_at: Any
    updated_at: Any
    sent_at: Any
    next_attempt_at: Any


_ENTRY = """
    SELECT n.id, n.event_id, n.event_type, n.integration_id, i.type AS integration_type, n.monitor_id,
           n.status, n.attempts, n.error_message, n.created_at, n.updated_at, n.sent_at, n.next_attempt_at
    FROM notification_log n JOIN integrations i ON i.id = n.integration_id
"""


async def page_for_user(
    conn: asyncpg.Pool | asyncpg.Connection,
    user_id: int,
    *,
    status: str | None,
    integration_id: int | None,
    since: Any,
    before_id: int | None,
    limit: int,
) -> list[LogEntry]:
    """The user's log, newest first, filtered by status, integration and creation time."""
    rows = await conn.fetch(
        f"""
        {_ENTRY}
        WHERE n.user_id = $1
          AND ($2::text IS NULL OR n.status = $2)
          AND ($3::bigint IS NULL OR n.integration_id = $3)
          AND ($4::timestamptz IS NULL OR n.created_at >= $4)
          AND ($5::bigint IS NULL OR n.id < $5)
        ORDER BY n.id DESC LIMIT $6
        """,
        user_id, status, integration_id, since, before_id, limit,
    )
    return [LogEntry(**dict(row)) for row in rows]


async def get_for_user(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, entry_id: int) -> LogEntry | None:
    row = await conn.fetchrow(f"{_ENTRY} WHERE n.id = $1 AND n.user_id = $2", entry_id, user_id)
    return LogEntry(**dict(row)) if row else None
