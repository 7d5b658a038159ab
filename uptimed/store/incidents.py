"""SQL for ``incidents`` and ``incident_events``: opened when a monitor goes down, acknowledged, resolved.

The evaluator opens and resolves incidents; a person acknowledges one (or
withdraws that), which :func:`acknowledge` records with its timeline entry in
one transaction. The evaluator that owns the monitor learns of it from
:func:`pending_acknowledgements` (``acknowledged_at`` differs from
``ack_applied_at``), acts on it, and records that with :func:`ack_applied`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from uptimed.store import Connection, PoolOrConnection

IncidentStatus = Literal["open", "resolved", "acknowledged", "unacknowledged"]
"""Filters of the incident lists: ``acknowledged`` and ``unacknowledged`` are of open incidents."""


async def open_incident(conn: Connection, monitor_id: int, *, opened_at_ms: int, cause: str) -> int:
    """The id of the monitor's open incident, creating it if there is none."""
    incident_id: int = await conn.fetchval(
        """
        INSERT INTO incidents (monitor_id, opened_at, cause)
        VALUES ($1, to_timestamp($2 / 1000.0), $3)
        ON CONFLICT (monitor_id) WHERE resolved_at IS NULL DO UPDATE SET cause = incidents.cause
        RETURNING id
        """,
        monitor_id,
        opened_at_ms,
        cause,
    )
    return incident_id


async def resolve_incident(conn: Connection, monitor_id: int, *, resolved_at_ms: int) -> int | None:
    """Resolve the monitor's open incident; its id, or None when none was open."""
    incident_id: int | None = await conn.fetchval(
        """
        UPDATE incidents SET resolved_at = to_timestamp($2 / 1000.0)
        WHERE monitor_id = $1 AND resolved_at IS NULL
        RETURNING id
        """,
        monitor_id,
        resolved_at_ms,
    )
    return incident_id


@dataclass(frozen=True)
class IncidentRecord:
    id: int
    monitor_id: int
    monitor_name: str
    owner_id: int
    opened_at: datetime
    resolved_at: datetime | None
    cause: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledged_via: str | None

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


_RECORD = """
    SELECT i.id, i.monitor_id, m.name AS monitor_name, m.owner_id, i.opened_at, i.resolved_at, i.cause,
           i.acknowledged_at, i.acknowledged_by, i.acknowledged_via
    FROM incidents i JOIN monitors m ON m.id = i.monitor_id
"""


async def page_for_owner(
    conn: PoolOrConnection,
    owner_id: int,
    *,
    monitor_id: int | None,
    open_only: bool = False,
    status: IncidentStatus | None = None,
    since: datetime | None,
    until: datetime | None = None,
    before_id: int | None,
    limit: int,
) -> list[IncidentRecord]:
    """Incidents of the owner's monitors, newest first; ``since``/``until`` bound when they were open."""
    if open_only and status is None:
        status = "open"
    rows = await conn.fetch(
        f"""
        {_RECORD}
        WHERE m.owner_id = $1
          AND ($2::bigint IS NULL OR i.monitor_id = $2)
          AND ($3::text IS NULL
               OR ($3 = 'open' AND i.resolved_at IS NULL)
               OR ($3 = 'resolved' AND i.resolved_at IS NOT NULL)
               OR ($3 = 'acknowledged' AND i.resolved_at IS NULL AND i.acknowledged_at IS NOT NULL)
               OR ($3 = 'unacknowledged' AND i.resolved_at IS NULL AND i.acknowledged_at IS NULL))
          AND ($4::timestamptz IS NULL OR i.resolved_at IS NULL OR i.resolved_at >= $4)
          AND ($5::timestamptz IS NULL OR i.opened_at < $5)
          AND ($6::bigint IS NULL OR i.id < $6)
        ORDER BY i.id DESC LIMIT $7
        """,
        owner_id,
        monitor_id,
        status,
        since,
        until,
        before_id,
        limit,
    )
    return [IncidentRecord(**dict(row)) for row in rows]


async def get_for_owner(conn: PoolOrConnection, owner_id: int, incident_id: int) -> IncidentRecord | None:
    row = await conn.fetchrow(f"{_RECORD} WHERE i.id = $1 AND m.owner_id = $2", incident_id, owner_id)
    return IncidentRecord(**dict(row)) if row else None


async def get(conn: PoolOrConnection, incident_id: int) -> IncidentRecord | None:
    """Whoever's it is: for an acknowledge link, whose signature already names the incident."""
    row = await conn.fetchrow(f"{_RECORD} WHERE i.id = $1", incident_id)
    return IncidentRecord(**dict(row)) if row else None


async def acknowledge(
    pool: asyncpg.Pool, incident_id: int, *, by: str, via: str, integration_id: int | None = None
) -> bool:
    """Acknowledge the open, unacknowledged incident, with its timeline entry; False when it is not that."""
    async with pool.acquire() as conn, conn.transaction():
        at = await conn.fetchval(
            """
            UPDATE incidents SET acknowledged_at = clock_timestamp(), acknowledged_by = $2, acknowledged_via = $3
            WHERE id = $1 AND resolved_at IS NULL AND acknowledged_at IS NULL
            RETURNING acknowledged_at
            """,
            incident_id,
            by,
            via,
        )
        if at is None:
            return False
        await add_event(conn, incident_id, at=at, kind="acknowledged", actor=by, via=via, integration_id=integration_id)
    return True


async def unacknowledge(pool: asyncpg.Pool, incident_id: int, *, by: str, via: str) -> bool:
    """Withdraw the acknowledgement of an open incident, with its timeline entry; False when there is none."""
    async with pool.acquire() as conn, conn.transaction():
        done = await conn.fetchval(
            """
            UPDATE incidents SET acknowledged_at = NULL, acknowledged_by = NULL, acknowledged_via = NULL
            WHERE id = $1 AND resolved_at IS NULL AND acknowledged_at IS NOT NULL
            RETURNING id
            """,
            incident_id,
        )
        if done is None:
            return False
        await add_event(conn, incident_id, at=None, kind="unacknowledged", actor=by, via=via)
    return True


async def link_used(conn: PoolOrConnection, incident_id: int, integration_id: int) -> bool:
    """Whether the acknowledge link sent to this integration about this incident was used already."""
    found = await conn.fetchval(
        """
        SELECT 1 FROM incident_events
        WHERE incident_id = $1 AND kind = 'acknowledged' AND via = 'link' AND integration_id = $2
        """,
        incident_id,
        integration_id,
    )
    return found is not None


@dataclass(frozen=True)
class Ack:
    """An incident's acknowledgement as stored."""

    at_ms: int
    by: str
    via: str


async def acknowledgements(conn: PoolOrConnection, incident_ids: Iterable[int]) -> dict[int, Ack | None]:
    """The acknowledgement of each of these incidents (None: not acknowledged)."""
    rows = await conn.fetch(
        """
        SELECT id, (extract(epoch FROM acknowledged_at) * 1000)::bigint AS at_ms, acknowledged_by, acknowledged_via
        FROM incidents WHERE id = ANY($1::bigint[])
        """,
        list(incident_ids),
    )
    return {
        row["id"]: Ack(row["at_ms"], row["acknowledged_by"] or "", row["acknowledged_via"] or "api")
        if row["at_ms"] is not None
        else None
        for row in rows
    }


async def pending_acknowledgements(conn: PoolOrConnection) -> dict[int, int]:
    """Monitors (to their open incident) acknowledged, or no longer, since their evaluator acted."""
    rows = await conn.fetch(
        """
        SELECT monitor_id, id FROM incidents
        WHERE resolved_at IS NULL AND acknowledged_at IS DISTINCT FROM ack_applied_at
        """
    )
    return {row["monitor_id"]: row["id"] for row in rows}


async def ack_applied(conn: Connection, applied: Mapping[int, int | None]) -> None:
    """Record, per incident, that its evaluator acted on the acknowledgement of this time (ms, or None: none).

    An incident acknowledged again meanwhile (another time) stays pending.
    """
    if applied:
        await conn.execute(
            """
            UPDATE incidents i SET ack_applied_at = i.acknowledged_at
            FROM unnest($1::bigint[], $2::bigint[]) AS a(id, at_ms)
            WHERE i.id = a.id AND (extract(epoch FROM i.acknowledged_at) * 1000)::bigint IS NOT DISTINCT FROM a.at_ms
            """,
            list(applied),
            list(applied.values()),
        )


async def add_event(
    conn: Connection,
    incident_id: int,
    *,
    at: datetime | None,
    kind: str,
    actor: str | None = None,
    via: str | None = None,
    integration_id: int | None = None,
    event_id: uuid.UUID | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """A timeline entry (``at`` None: now); one with an ``event_id`` is written once, however often replayed."""
    await conn.execute(
        """
        INSERT INTO incident_events (incident_id, at, kind, actor, via, integration_id, event_id, detail)
        VALUES ($1, coalesce($2, clock_timestamp()), $3, $4, $5, $6, $7, $8)
        ON CONFLICT (event_id) DO NOTHING
        """,
        incident_id,
        at,
        kind,
        actor,
        via,
        integration_id,
        event_id,
        dict(detail or {}),
    )


@dataclass(frozen=True)
class IncidentEvent:
    at: datetime
    kind: str
    actor: str | None
    via: str | None
    integration_id: int | None
    detail: dict[str, Any]


async def events_of(conn: PoolOrConnection, incident_id: int) -> list[IncidentEvent]:
    """The incident's timeline entries, oldest first."""
    rows = await conn.fetch(
        """
        SELECT at, kind, actor, via, integration_id, detail FROM incident_events
        WHERE incident_id = $1 ORDER BY at, id
        """,
        incident_id,
    )
    return [IncidentEvent(**dict(row)) for row in rows]
