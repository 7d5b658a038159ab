"""The chart queries against the real PostgreSQL: buckets, averages, regions, UTC days, owners."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest

from uptimed.store.stats import (
    DayUptime,
    Point,
    daily_uptime,
    recent_response_times,
    region_response_times,
)

START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TEN_MINUTES = timedelta(minutes=10)


async def add_user(pool: asyncpg.Pool, name: str) -> int:
    return await pool.fetchval(
        "INSERT INTO users (username, email) VALUES ($1, $2) RETURNING id", name, f"{name}@example.com"
    )


async def add_monitor(pool: asyncpg.Pool, owner_id: int, name: str) -> int:
    return await pool.fetchval(
        """
        INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s, regions)
        VALUES ($1, $2, 'https://example.com', 60, 10, '{eu-west,us-east}') RETURNING id
        """,
        owner_id,
        name,
    )


async def add_checks(pool: asyncpg.Pool, monitor_id: int, *checks: tuple[datetime, str, str, float | None]) -> None:
    """Checks as (checked_at, region, status, response_time_ms)."""
    await pool.executemany(
        "INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms) VALUES ($1, $2, $3, $4, $5)",
        [(monitor_id, region, at, status, ms) for at, region, status, ms in checks],
    )


def at_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


async def test_recent_response_times_average_up_checks_per_bucket_and_flag_down_ones(pool):
    alice = await add_user(pool, "alice")
    shop, quiet = await add_monitor(pool, alice, "shop"), await add_monitor(pool, alice, "quiet")
    since = datetime.now(UTC) - timedelta(hours=6)
    middle = since + TEN_MINUTES / 2  # checks in the middle of their bucket, clear of its edges
    await add_checks(
        pool,
        shop,
        (middle, "eu-west", "up", 10),
        (middle, "us-east", "up", 30),
        (middle + 5 * TEN_MINUTES, "eu-west", "up", 100),
        (middle + 5 * TEN_MINUTES, "us-east", "down", 9000),
        (middle + 10 * TEN_MINUTES, "eu-west", "down", None),
        (since - timedelta(minutes=1), "eu-west", "up", 5000),  # before the range
    )

    got = await recent_response_times(pool, alice, [shop, quiet], since=since, buckets=36)

    assert list(got) == [shop, quiet]
    points = got[shop]
    assert len(points) == 36
    for n, point in enumerate(points):
        assert abs(point.at - (since + n * TEN_MINUTES)) < timedelta(seconds=1)
    assert points[0].ms == 20 and not points[0].down
    assert points[5].ms == 100 and points[5].down  # the down check's 9000 ms is not averaged in
    assert points[10].ms is None and points[10].down
    assert [n for n, p in enumerate(points) if p.ms is not None or p.down] == [0, 5, 10]
    assert [(p.ms, p.down) for p in got[quiet]] == [(None, False)] * 36


async def test_region_response_times_split_the_series_by_region(pool):
    alice = await add_user(pool, "alice")
    shop = await add_monitor(pool, alice, "shop")
    await add_checks(
        pool,
        shop,
        (START + timedelta(minutes=1), "us-east", "up", 40),
        (START + timedelta(minutes=2), "us-east", "up", 60),
        (START + timedelta(minutes=1), "eu-west", "up", 10),
        (START + timedelta(minutes=59), "eu-west", "down", None),
        (START + timedelta(minutes=61), "eu-west", "up", 999),  # after the range
    )

    got = await region_response_times(pool, alice, shop, since=START, until=START + timedelta(hours=1), buckets=6)

    assert list(got) == ["eu-west", "us-east"]
    assert [p.at for p in got["eu-west"]] == [START + n * TEN_MINUTES for n in range(6)]
    assert got["eu-west"] == [Point(START, 10, False)] + [
        Point(START + n * TEN_MINUTES, None, False) for n in range(1, 5)
    ] + [Point(START + 5 * TEN_MINUTES, None, True)]
    assert got["us-east"][0] == Point(START, 50, False)
    assert all(p.ms is None and not p.down for p in got["us-east"][1:])


async def test_a_range_that_does_not_divide_evenly_still_has_the_buckets_asked_for(pool):
    alice = await add_user(pool, "alice")
    shop = await add_monitor(pool, alice, "shop")
    until = START + timedelta(days=7, microseconds=5)  # 1440 buckets of 420.000000003 s
    await add_checks(pool, shop, (START, "eu-west", "up", 1), (until - timedelta(microseconds=1), "eu-west", "up", 2))

    got = await region_response_times(pool, alice, shop, since=START, until=until, buckets=1440)

    points = got["eu-west"]
    assert len(points) == 1440 and points[0].ms == 1 and points[-1].ms == 2
    assert all(p.ms is None for p in points[1:-1])


async def test_daily_uptime_counts_checks_per_utc_day(pool, database):
    alice = await add_user(pool, "alice")
    shop, quiet = await add_monitor(pool, alice, "shop"), await add_monitor(pool, alice, "quiet")
    today = date(2026, 11, 24)
    midnight = datetime.combine(today, time(), UTC)
    await add_checks(
        pool,
        shop,
        *[(at_noon(today) + timedelta(minutes=n), "eu-west", "up", 10) for n in range(3)],
        (at_noon(today), "us-east", "down", None),
        (midnight - timedelta(seconds=1), "eu-west", "up", 10),  # the last second of yesterday
        (at_noon(today - timedelta(days=2)), "eu-west", "up", 10),
        (at_noon(today - timedelta(days=5)), "eu-west", "down", None),  # before the 5 days
        (midnight + timedelta(days=1), "eu-west", "down", None),  # tomorrow
    )
    # a session in another time zone still gets UTC days
    conn = await asyncpg.connect(database, server_settings={"TimeZone": "Pacific/Auckland"})
    try:
        got = await daily_uptime(conn, alice, [shop, quiet], days=5, today=today)
    finally:
        await conn.close()

    days = [today - timedelta(days=n) for n in (4, 3, 2, 1, 0)]
    assert got[shop] == [
        DayUptime(days[0], 0, 0),
        DayUptime(days[1], 0, 0),
        DayUptime(days[2], 1, 1),
        DayUptime(days[3], 1, 1),
        DayUptime(days[4], 4, 3),
    ]
    assert [d.percent for d in got[shop]] == [None, None, 100, 100, 75]
    assert got[quiet] == [DayUptime(d, 0, 0) for d in days]


async def test_daily_uptime_has_exactly_the_days_asked_for_ending_today(pool):
    alice = await add_user(pool, "alice")
    shop = await add_monitor(pool, alice, "shop")
    await add_checks(pool, shop, (datetime.now(UTC), "eu-west", "up", 10))

    got = (await daily_uptime(pool, alice, [shop]))[shop]

    assert len(got) == 90
    assert [d.day for d in got] == sorted({d.day for d in got})
    assert got[-1].day == datetime.now(UTC).date() and got[-1].percent == 100
    assert all(d.percent is None for d in got[:-1])


async def test_another_owners_monitors_yield_nothing(pool):
    alice, bob = await add_user(pool, "alice"), await add_user(pool, "bob")
    shop = await add_monitor(pool, alice, "shop")
    bobs = await add_monitor(pool, bob, "bobs")
    now = datetime.now(UTC)
    await add_checks(pool, shop, (now - timedelta(minutes=5), "eu-west", "up", 10))

    assert await recent_response_times(pool, bob, [shop], since=now - timedelta(hours=1), buckets=6) == {}
    assert await region_response_times(pool, bob, shop, since=now - timedelta(hours=1), until=now, buckets=6) == {}
    assert await daily_uptime(pool, bob, [shop]) == {}
    # asking for both gives bob only his own
    assert list(await daily_uptime(pool, bob, [shop, bobs], days=3)) == [bobs]


@pytest.mark.parametrize("buckets", [0, -1])
async def test_bucket_count_must_be_positive(pool, buckets):
    with pytest.raises(ValueError, match="buckets"):
        await region_response_times(pool, 1, 1, since=START, until=START + timedelta(hours=1), buckets=buckets)
