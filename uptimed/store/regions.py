"""SQL for ``region_activity``: the newest check result seen from each region."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from uptimed.store import PoolOrConnection
from uptimed.store.statements import Statement


def seen_statement(newest: Mapping[str, int]) -> Statement | None:
    """Record the newest ``checked_at_ms`` of each region in a batch (never moving backwards); None: no results."""
    if not newest:
        return None
    return Statement(
        """
        INSERT INTO region_activity AS a (region, last_result_at)
        SELECT r, to_timestamp(t / 1000.0) FROM unnest($1::text[], $2::bigint[]) AS x(r, t)
        ORDER BY r
        ON CONFLICT (region) DO UPDATE SET last_result_at = greatest(a.last_result_at, EXCLUDED.last_result_at)
        """,
        (list(newest), list(newest.values())),
    )


async def last_results(conn: PoolOrConnection) -> dict[str, datetime]:
    """When each region last sent a result, as stored by any process."""
    rows = await conn.fetch("SELECT region, last_result_at FROM region_activity ORDER BY region")
    return {row["region"]: row["last_result_at"] for row in rows}
