"""SQL for ``notification_log``: one row per (event, integration), every attempt on record.

The row is written as a PENDING intent before the event's offset is
committed; the unique key on (event id, integration id) makes a redelivered
event a no-op. Deliveries claim due rows with a lease, so several processes
share the work and a crashed one's rows come due again when the lease ends.
Each attempt is on record before its request leaves (``start_attempt``), so
an attempt cut short by a dying process shows as ``unknown`` in
``attempt_log``, and the retry counts as the next attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from uptimed.event import MonitorEvent
from uptimed.store import Connection, PoolOrConnection


@dataclass(frozen=True)
class Intent:
    event: MonitorEvent
    integration_id: int


async def add_intents(conn: Connection, intents: Sequence[Intent]) -> int:
    """Insert PENDING rows, skipping (event, integration) pairs already recorded; returns rows added."""
    if not intents:
        return 0
    status = await conn.execute(
        """
        INSERT INTO notification_log (event_id, event_type, integration_id, user_id, monitor_id, payload, incident_id)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::jsonb[],
                             $7::bigint[])
        ON CONFLICT (event_id, integration_id) DO NOTHING
        """,
        [i.event.eventId for i in intents],
        [i.event.type.value for i in intents],
        [i.integration_id for i in intents],
        [i.event.userId for i in intents],
        [i.event.websiteId for i in intents],
        [i.event.model_dump(mode="json") for i in intents],
        [i.event.incidentId for i in intents],
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
    abandoned_by: str | None = None
    """Set when the previous attempt was in flight in a process that stopped: its outcome is unknown."""
    declared: bool = False
    """The integration is declared in the config file (the operator's own: the target policy does not apply)."""


async def claim_due(pool: asyncpg.Pool, *, owner: str, limit: int, lease_s: float) -> list[Delivery]:
    """Hold up to ``limit`` due PENDING / RETRYING rows for ``owner`` for ``lease_s`` seconds, oldest first.

    A due row whose attempt was started but never finished (its owner died
    during the request and the lease ran out) has that attempt put on record
    as ``unknown`` here, before it is tried again.
    """
    rows = await pool.fetch(
        """
        WITH due AS (
            SELECT id, lease_owner AS abandoned_by, attempt_started_at AS abandoned_at FROM notification_log
            WHERE status IN ('PENDING', 'RETRYING') AND next_attempt_at <= now()
            ORDER BY next_attempt_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE notification_log n
        SET next_attempt_at = now() + make_interval(secs => $2), updated_at = now(), lease_owner = $3,
            attempt_started_at = NULL,
            attempt_log = CASE WHEN due.abandoned_at IS NULL THEN n.attempt_log ELSE n.attempt_log || jsonb_build_object(
                'attempt', n.attempts, 'outcome', 'unknown', 'owner', due.abandoned_by, 'started_at', due.abandoned_at
            ) END,
            error_message = CASE WHEN due.abandoned_at IS NULL THEN n.error_message ELSE format(
                'attempt %s: outcome unknown (%s stopped during the request)', n.attempts, due.abandoned_by
            ) END
        FROM due, integrations i
        WHERE n.id = due.id AND i.id = n.integration_id
        RETURNING n.id, n.event_id, n.integration_id, n.attempts, n.payload, i.type, i.config, i.enabled,
                  CASE WHEN due.abandoned_at IS NULL THEN NULL ELSE coalesce(due.abandoned_by, '?') END AS abandoned_by,
                  i.config_key IS NOT NULL AS declared
        """,
        limit,
        lease_s,
        owner,
    )
    return [Delivery(**dict(row)) for row in rows]


async def renew(pool: asyncpg.Pool, delivery_ids: Sequence[int], *, owner: str, lease_s: float) -> int:
    """Extend ``owner``'s lease on these rows by ``lease_s`` from now; returns how many it still holds."""
    if not delivery_ids:
        return 0
    status = await pool.execute(
        """
        UPDATE notification_log SET next_attempt_at = now() + make_interval(secs => $3)
        WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND status IN ('PENDING', 'RETRYING')
        """,
        list(delivery_ids),
        owner,
        lease_s,
    )
    return int(status.rsplit(" ", 1)[1])


async def start_attempt(pool: asyncpg.Pool, delivery_id: int, *, owner: str, lease_s: float) -> int | None:
    """Put on record that ``owner`` sends now, before the request leaves; the attempt's number.

    None when ``owner`` no longer holds the row (its lease ran out and another took it).
    """
    attempt: int | None = await pool.fetchval(
        """
        UPDATE notification_log
        SET attempts = attempts + 1, attempt_started_at = now(), updated_at = now(),
            next_attempt_at = now() + make_interval(secs => $3)
        WHERE id = $1 AND lease_owner = $2 AND status IN ('PENDING', 'RETRYING')
        RETURNING attempts
        """,
        delivery_id,
        owner,
        lease_s,
    )
    return attempt


# The outcome of attempt $3 of row $1 by owner $2, appended to attempt_log; a later owner's row is left alone.
_FINISH = """
    UPDATE notification_log
    SET {changes}, updated_at = now(), lease_owner = NULL, attempt_started_at = NULL,
        attempt_log = attempt_log || jsonb_build_object(
            'attempt', attempts, 'outcome', $4::text, 'owner', lease_owner, 'started_at', attempt_started_at,
            'ended_at', now(), 'error', $5::text
        )
    WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND attempt_started_at IS NOT NULL
"""


async def mark_sent(pool: asyncpg.Pool, delivery_id: int, *, owner: str, attempt: int) -> None:
    """SENT. The error column keeps only what a reader must know: earlier attempts whose outcome is unknown."""
    changes = """status = 'SENT', sent_at = now(), error_message = (
        SELECT string_agg(format('attempt %s: outcome unknown (%s stopped during the request)',
                                 a->>'attempt', a->>'owner'), '; ')
        FROM jsonb_array_elements(attempt_log) a WHERE a->>'outcome' = 'unknown'
    )"""
    await pool.execute(_FINISH.format(changes=changes), delivery_id, owner, attempt, "sent", None)


async def mark_retrying(
    pool: asyncpg.Pool, delivery_id: int, *, owner: str, attempt: int, delay_s: float, error: str
) -> None:
    changes = "status = 'RETRYING', error_message = $5, next_attempt_at = now() + make_interval(secs => $6)"
    await pool.execute(_FINISH.format(changes=changes), delivery_id, owner, attempt, "retrying", error[:2000], delay_s)


async def mark_failed(pool: asyncpg.Pool, delivery_id: int, *, owner: str, error: str, attempt: int | None) -> None:
    """FAILED after attempt ``attempt``, or without any attempt (``None``: nothing can be sent)."""
    if attempt is not None:
        changes = "status = 'FAILED', error_message = $5"
        await pool.execute(_FINISH.format(changes=changes), delivery_id, owner, attempt, "failed", error[:2000])
        return
    await pool.execute(
        """
        UPDATE notification_log SET status = 'FAILED', error_message = $3, updated_at = now(), lease_owner = NULL
        WHERE id = $1 AND lease_owner = $2
        """,
        delivery_id,
        owner,
        error[:2000],
    )


async def postpone(pool: asyncpg.Pool, delivery_id: int, *, owner: str, delay_s: float) -> None:
    """Give a held row back, due ``delay_s`` from now, without counting an attempt (its destination's rate limit)."""
    await pool.execute(
        """
        UPDATE notification_log SET next_attempt_at = now() + make_interval(secs => $3), lease_owner = NULL
        WHERE id = $1 AND lease_owner = $2
        """,
        delivery_id,
        owner,
        delay_s,
    )


async def next_due_in(pool: asyncpg.Pool) -> float | None:
    """Seconds until the next PENDING / RETRYING row is due (<= 0: now), None when there is none."""
    seconds: float | None = await pool.fetchval(
        """
        SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM notification_log
        WHERE status IN ('PENDING', 'RETRYING')
        """
    )
    return seconds


DeliveryStatus = Literal["PENDING", "SENT", "FAILED", "RETRYING"]
"""The states of a row, as the table's CHECK allows them."""


@dataclass(frozen=True)
class LogEntry:
    """A row of the log as its user sees it: no payload, no lease."""

    id: int
    event_id: uuid.UUID
    event_type: str
    integration_id: int
    integration_type: str
    monitor_id: int | None
    status: DeliveryStatus
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
    conn: PoolOrConnection,
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
        user_id,
        status,
        integration_id,
        since,
        before_id,
        limit,
    )
    return [LogEntry(**dict(row)) for row in rows]


async def get_for_user(conn: PoolOrConnection, user_id: int, entry_id: int) -> LogEntry | None:
    row = await conn.fetchrow(f"{_ENTRY} WHERE n.id = $1 AND n.user_id = $2", entry_id, user_id)
    return LogEntry(**dict(row)) if row else None


@dataclass(frozen=True)
class IncidentDelivery:
    """One notification about an incident, for its timeline: what went to which integration, and how it went."""

    id: int
    event_type: str
    reminder: bool
    step: int | None
    """The escalation step it sent, if any."""
    repeat: int
    integration_id: int
    integration_type: str
    status: str
    attempts: int
    error_message: str | None
    created_at: Any
    sent_at: Any


async def for_incident(conn: PoolOrConnection, incident_id: int) -> list[IncidentDelivery]:
    """Every notification about the incident, oldest first."""
    rows = await conn.fetch(
        """
        SELECT n.id, n.event_type, coalesce((n.payload->>'reminder')::bool, false) AS reminder,
               (n.payload->'escalation'->>'step')::int AS step,
               coalesce((n.payload->'escalation'->>'repeat')::int, 0) AS repeat,
               n.integration_id, i.type AS integration_type, n.status, n.attempts, n.error_message,
               n.created_at, n.sent_at
        FROM notification_log n JOIN integrations i ON i.id = n.integration_id
        WHERE n.incident_id = $1
        ORDER BY n.created_at, n.id
        """,
        incident_id,
    )
    return [IncidentDelivery(**dict(row)) for row in rows]
