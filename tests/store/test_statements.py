"""Statements run together: one statement in one round trip, all of it stored or none of it."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from tests.support import add_monitor
from uptimed.check import CheckResult, CheckStatus
from uptimed.store import checks, monitor_state, regions
from uptimed.store.statements import execute_together

AT_MS = int(datetime(2026, 11, 20, 10, 30, tzinfo=UTC).timestamp() * 1000)


def up(monitor: int, *, later_ms: int = 0) -> CheckResult:
    return CheckResult(
        monitor_id=monitor, region="eu", status=CheckStatus.UP, response_time_ms=40.0, checked_at_ms=AT_MS + later_ms
    )


async def test_a_batch_stores_its_checks_states_wakes_and_regions_together(pool: asyncpg.Pool) -> None:
    _, first = await add_monitor(pool, username="alice")
    _, second = await add_monitor(pool, username="bob")
    await monitor_state.save_many(pool, {second: {"status": "up"}})
    await execute_together(
        pool,
        [
            checks.insert_statement([up(first), up(first, later_ms=60_000)], [False, True]),
            monitor_state.save_statement({first: {"status": "up"}}, {first: AT_MS + 60_000}),
            monitor_state.wakes_statement({second: AT_MS + 5_000}),
            regions.seen_statement({"eu": AT_MS}),
        ],
    )
    stored = await pool.fetch("SELECT monitor_id, region, status, in_maintenance FROM checks ORDER BY checked_at")
    assert [tuple(row) for row in stored] == [(first, "eu", "up", False), (first, "eu", "up", True)]
    hour = await pool.fetchrow("SELECT checks, maintenance FROM check_hours WHERE monitor_id = $1", first)
    assert tuple(hour) == (1, 1)  # rolled up by the trigger, as from a statement of its own
    assert await monitor_state.load_many(pool, [first, second]) == {first: {"status": "up"}, second: {"status": "up"}}
    assert await monitor_state.wake_times(pool) == {first: AT_MS + 60_000, second: AT_MS + 5_000}
    assert (await regions.last_results(pool))["eu"] == datetime.fromtimestamp(AT_MS / 1000, UTC)


async def test_a_part_that_fails_stores_nothing_of_the_others(pool: asyncpg.Pool) -> None:
    _, kept = await add_monitor(pool)
    gone = kept + 1000  # deleted meanwhile: its state violates the foreign key
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await execute_together(
            pool,
            [
                checks.insert_statement([up(kept)]),
                regions.seen_statement({"eu": AT_MS}),
                monitor_state.save_statement({gone: {"status": "up"}}),
            ],
        )
    assert await pool.fetchval("SELECT count(*) FROM checks") == 0
    assert await pool.fetchval("SELECT count(*) FROM check_hours") == 0
    assert await regions.last_results(pool) == {}


async def test_nothing_to_store_asks_nothing(pool: asyncpg.Pool) -> None:
    await pool.close()  # a query would fail now
    await execute_together(pool, [checks.insert_statement([]), monitor_state.save_statement({}), None])
