"""SQL for the ``checks`` table (the original design's ``website_tick``).

Every insert also rolls the new rows up into ``check_hours`` (a trigger in
schema.sql), whoever writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from uptimed.check import CheckResult
from uptimed.store import PoolOrConnection
from uptimed.store.statements import Statement, execute


def insert_statement(results: Sequence[CheckResult], in_maintenance: Sequence[bool] | None = None) -> Statement | None:
    """Write a batch of results; a result already stored is skipped (None: no results).

    ``in_maintenance`` says, per result, whether a maintenance window of its monitor was on (uptime leaves it out).
    """
    if not results:
        return None
    return Statement(
        """
        INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms, status_code, error_class, error,
                            message, in_maintenance)
        SELECT m, r, to_timestamp(t / 1000.0), s, rt, sc, ec, e, msg, coalesce(im, false)
        FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::real[], $6::smallint[], $7::text[], $8::text[],
                    $9::text[], $10::boolean[])
             AS x(m, r, t, s, rt, sc, ec, e, msg, im)
        ON CONFLICT (monitor_id, region, checked_at) DO NOTHING
        """,
        (
            [r.monitor_id for r in results],
            [r.region for r in results],
            [r.checked_at_ms for r in results],
            [r.status.value for r in results],
            [r.response_time_ms for r in results],
            [r.status_code for r in results],
            [r.error_class.value if r.error_class else None for r in results],
            [r.error for r in results],
            [r.message for r in results],
            list(in_maintenance) if in_maintenance is not None else [False] * len(results),
        ),
    )


async def insert_many(
    conn: PoolOrConnection, results: Sequence[CheckResult], in_maintenance: Sequence[bool] | None = None
) -> None:
    """Write a batch of results in one round trip (:func:`insert_statement`)."""
    await execute(conn, insert_statement(results, in_maintenance))


async def first_at(conn: PoolOrConnection, monitor_id: int) -> datetime | None:
    """When the monitor's oldest stored check was made; None before its first."""
    found: datetime | None = await conn.fetchval("SELECT min(checked_at) FROM checks WHERE monitor_id = $1", monitor_id)
    return found


@dataclass(frozen=True)
class StoredCheck:
    """One row of ``checks`` as the API shows it."""

    region: str
    checked_at: datetime
    status: str
    response_time_ms: float | None
    status_code: int | None
    error_class: str | None
    error: str | None
    message: str | None


async def page_for_owner(
    conn: PoolOrConnection,
    owner_id: int,
    monitor_id: int,
    *,
    since: datetime | None,
    until: datetime | None,
    region: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[StoredCheck]:
    """Checks of one of the owner's monitors, newest first, in ``[since, until)``.

    ``before`` is the (checked_at, region) of the last row of the previous page.
    """
    before_at, before_region = before if before else (None, None)
    rows = await conn.fetch(
        """
        SELECT c.region, c.checked_at, c.status, c.response_time_ms::float8 AS response_time_ms,
               c.status_code::int AS status_code, c.error_class, c.error, c.message
        FROM checks c JOIN monitors m ON m.id = c.monitor_id
        WHERE c.monitor_id = $1 AND m.owner_id = $2
          AND ($3::timestamptz IS NULL OR c.checked_at >= $3)
          AND ($4::timestamptz IS NULL OR c.checked_at < $4)
          AND ($5::text IS NULL OR c.region = $5)
          AND ($6::timestamptz IS NULL OR (c.checked_at, c.region) < ($6, $7::text))
        ORDER BY c.checked_at DESC, c.region DESC
        LIMIT $8
        """,
        monitor_id,
        owner_id,
        since,
        until,
        region,
        before_at,
        before_region,
        limit,
    )
    return [StoredCheck(**dict(row)) for row in rows]
