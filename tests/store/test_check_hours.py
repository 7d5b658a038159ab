"""check_hours: the hourly roll-up of checks that uptime over days and months is read from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from tests.support import add_monitor
from uptimed.check import CheckResult, CheckStatus
from uptimed.store import checks, monitors


def result(monitor: int, at: datetime, status: str, ms: float | None = 50.0, region: str = "eu") -> CheckResult:
    at_ms = int(at.timestamp() * 1000)
    return CheckResult(
        monitor_id=monitor,
        region=region,
        status=CheckStatus(status),
        response_time_ms=ms,
        checked_at_ms=at_ms,
        scheduled_at_ms=at_ms,
    )


async def store(pool: asyncpg.Pool, results: list[CheckResult]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await checks.insert_many(conn, results)


async def test_each_stored_check_is_counted_once_in_its_hour(pool: asyncpg.Pool) -> None:
    _, monitor = await add_monitor(pool)
    hour = datetime(2026, 11, 20, 10, tzinfo=UTC)
    batch = [
        result(monitor, hour + timedelta(minutes=1), "up", 40.0),
        result(monitor, hour + timedelta(minutes=2), "down", 900.0),
        result(monitor, hour + timedelta(minutes=59, seconds=59), "up", 60.0),
        result(monitor, hour + timedelta(hours=1), "up", 10.0),
        result(monitor, hour + timedelta(minutes=1), "up", 70.0, region="us"),
    ]
    await store(pool, batch)
    await store(pool, batch[:3])  # redelivered: already stored, so not counted again

    rows = await pool.fetch(
        "SELECT region, hour, checks, up, up_ms_sum, up_ms_count FROM check_hours ORDER BY hour, region"
    )
    assert [tuple(r) for r in rows] == [
        ("eu", hour, 3, 2, 100.0, 2),  # the down check's time is not a response time
        ("us", hour, 1, 1, 70.0, 1),
        ("eu", hour + timedelta(hours=1), 1, 1, 10.0, 1),
    ]


async def test_uptime_windows_read_from_the_hours_match_the_checks(pool: asyncpg.Pool) -> None:
    owner, monitor = await add_monitor(pool)
    now = datetime.now(UTC)
    # One check every 10 minutes for 10 days; down for the whole of day 3 and one hour an hour ago.
    batch = []
    for n in range(10 * 144):
        at = now - timedelta(minutes=10 * n + 1)
        down = timedelta(days=2) < now - at <= timedelta(days=3) or timedelta(minutes=61) < now - at <= timedelta(
            minutes=121
        )
        batch.append(result(monitor, at, "down" if down else "up"))
    await store(pool, batch)

    overview = await monitors.get_overview(pool, owner, monitor)

    def raw(days: int) -> float:
        window = [r for r in batch if now.timestamp() * 1000 - r.checked_at_ms < days * 86_400_000]
        return 100.0 * sum(r.status is CheckStatus.UP for r in window) / len(window)

    # Whole hours: the windows may differ from exact ones by the part of an hour at their start.
    assert overview.uptime_24h == pytest.approx(raw(1), abs=1.0)
    assert overview.uptime_7d == pytest.approx(raw(7), abs=0.2)
    assert overview.uptime_30d == pytest.approx(raw(10), abs=0.2)
    assert overview.uptime_24h < 100 and overview.uptime_7d < overview.uptime_24h


async def test_deleting_a_monitor_deletes_its_hours(pool: asyncpg.Pool) -> None:
    _, monitor = await add_monitor(pool)
    await store(pool, [result(monitor, datetime.now(UTC), "up")])
    await pool.execute("DELETE FROM monitors WHERE id = $1", monitor)
    assert await pool.fetchval("SELECT count(*) FROM check_hours") == 0
