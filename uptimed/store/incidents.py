"""SQL for ``incidents``: opened when a monitor goes down, resolved when it is up again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from uptimed.store import Connection, PoolOrConnection


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
    opened_at: datetime
    resolved_at: datetime | None
    cause: str


_RECORD = """
    SELECT i.id, i.monitor_id, m.name AS monitor_name, i.opened_at, i.resolved_at, i.cause
    FROM incidents i JOIN monitors m ON m.id = i.monitor_id
"""


async def page_for_owner(
    conn: PoolOrConnection,
    owner_id: int,
    *,
    monitor_id: int | None,
    open_only: bool,
    since: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[IncidentRecord]:
    """Incidents of the owner's monitors, newest first."""
    rows = await conn.fetch(
        f"""
        {_RECORD}
        WHERE m.owner_id = $1
          AND ($2::bigint IS NULL OR i.monitor_id = $2)
          AND (NOT $3::bool OR i.resolved_at IS NULL)
          AND ($4::timestamptz IS NULL OR i.opened_at >= $4)
          AND ($5::bigint IS NULL OR i.id < $5)
        ORDER BY i.id DESC LIMIT $6
        """,
        owner_id,
        monitor_id,
        open_only,
        since,
        before_id,
        limit,
    )
    return [IncidentRecord(**dict(row)) for row in rows]


async def get_for_owner(conn: PoolOrConnection, owner_id: int, incident_id: int) -> IncidentRecord | None:
    row = await conn.fetchrow(f"{_RECORD} WHERE i.id = $1 AND m.owner_id = $2", incident_id, owner_id)
    return IncidentRecord(**dict(row)) if row else None
