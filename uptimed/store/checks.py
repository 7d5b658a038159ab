"""SQL for the ``checks`` table (the original design's ``website_tick``)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from uptimed.bus.messages import CheckResult


async def insert_many(conn: asyncpg.Connection, results: Sequence[CheckResult]) -> None:
    """Write a batch of results in one round trip; a result already stored is skipped."""
    if not results:
        return
    await conn.execute(
        """
        INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms, status_code, error_class, error)
        SELECT m, r, to_timestamp(t / 1000.0), s, rt, sc, ec, e
        FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::real[], $6::smallint[], $7::text[], $8::text[])
             AS x(m, r, t, s, rt, sc, ec, e)
        ON CONFLICT (monitor_id, region, checked_at) DO NOTHING
        """,
        [r.monitor_id for r in results],
        [r.region for r in results],
        [r.checked_at_ms for r in results],
        [r.status.value for r in results],
        [r.response_time_ms for r in results],
        [r.status_code for r in results],
        [r.error_class.value if r.error_class else None for r in results],
        [r.error for r in results],
    )
