"""Retention: old raw checks and finished notifications go, the hourly uptime roll-up and pending work stay."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support import add_monitor
from uptimed import retention as retention_module
from uptimed.config import RetentionSettings
from uptimed.retention import Retention

DAY = 86400.0


async def seed(pool: asyncpg.Pool) -> tuple[int, int]:
    owner, monitor = await add_monitor(pool)
    # A check every hour for 60 days.
    await pool.execute(
        """
        INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms)
        SELECT $1, 'eu', now() - make_interval(hours => n), 'up', 20 FROM generate_series(0, 60 * 24 - 1) n
        """,
        monitor,
    )
    integration = await pool.fetchval(
        "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', '{}') RETURNING id", owner
    )
    for status, age_days in [("SENT", 100), ("FAILED", 95), ("RETRYING", 100), ("SENT", 10)]:
        await pool.execute(
            """
            INSERT INTO notification_log (event_id, event_type, integration_id, user_id, status, payload, updated_at)
            VALUES (gen_random_uuid(), 'website.down', $1, $2, $3, '{}', now() - make_interval(days => $4))
            """,
            integration,
            owner,
            status,
            age_days,
        )
    return owner, monitor


async def test_prunes_what_is_older_than_configured_and_keeps_the_rest(pool: asyncpg.Pool) -> None:
    await seed(pool)
    hours_before = await pool.fetchval("SELECT sum(checks) FROM check_hours")

    pruned = await Retention(
        pool=pool, settings=RetentionSettings(checks=35 * DAY, notifications=90 * DAY)
    ).prune_once()

    assert pruned is not None
    assert pruned.checks == 25 * 24
    assert await pool.fetchval("SELECT count(*) FROM checks") == 35 * 24
    assert await pool.fetchval("SELECT min(checked_at) > now() - interval '35 days' FROM checks")
    # Uptime history is the roll-up's: untouched.
    assert await pool.fetchval("SELECT sum(checks) FROM check_hours") == hours_before == 60 * 24
    # Finished and old: gone. Still being retried, or recent: kept.
    assert pruned.notifications == 2
    left = await pool.fetch("SELECT status FROM notification_log ORDER BY id")
    assert [r["status"] for r in left] == ["RETRYING", "SENT"]


async def test_a_process_leaves_pruning_to_the_one_already_at_it(pool: asyncpg.Pool) -> None:
    await seed(pool)
    settings = RetentionSettings(checks=35 * DAY, notifications=90 * DAY)
    async with pool.acquire() as other:
        await other.execute("SELECT pg_advisory_lock($1)", retention_module._LOCK)  # another process pruning
        assert await Retention(pool=pool, settings=settings).prune_once() is None
        assert await pool.fetchval("SELECT count(*) FROM checks") == 60 * 24
        await other.execute("SELECT pg_advisory_unlock($1)", retention_module._LOCK)
    assert (await Retention(pool=pool, settings=settings).prune_once()).checks == 25 * 24


async def test_retention_settings_refuse_less_than_a_day() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 86400"):
        RetentionSettings(checks=3600)
