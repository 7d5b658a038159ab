"""Maintenance windows in the evaluator against the real Kafka and PostgreSQL, results fed by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from tests.evaluate.test_evaluator import (  # noqa: F401 - fixtures
    Feed,
    Running,
    evaluators,
    events,
    feed,
    kafka_producer,
    make_monitors,
    now_ms,
    result,
)
from tests.support import EventReader, eventually
from uptimed.evaluate.maintenance import WINDOWS_CACHE_S
from uptimed.maintenance import MaintenanceIn
from uptimed.store import maintenance

pytestmark = pytest.mark.kafka


def ms(*parts: int) -> int:
    return round(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


async def owner_of(pool: asyncpg.Pool, monitor_id: int) -> int:
    owner: int = await pool.fetchval("SELECT owner_id FROM monitors WHERE id = $1", monitor_id)
    return owner


async def one_off_window(pool: asyncpg.Pool, start_ms: int, end_ms: int, monitor_ids: list[int]) -> int:
    """A one-off window "deploy" of the monitors' owner, on from ``start_ms`` to ``end_ms``; its id."""
    owner = await owner_of(pool, monitor_ids[0])
    window = MaintenanceIn(
        name="deploy",
        start=datetime.fromtimestamp(start_ms / 1000, UTC),
        end=datetime.fromtimestamp(end_ms / 1000, UTC),
        monitor_ids=monitor_ids,
    )
    return await maintenance.create(pool, owner, window)


async def test_a_window_holds_a_flapping_monitor_and_one_still_down_at_its_end_is_alerted_once(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    flapping, broken, outside = await make_monitors(pool, 3)
    start = now_ms()
    end = start + 6000
    await one_off_window(pool, start - 1000, end, [flapping, broken])
    evaluators.start()
    # Inside the window: both flap; the first ends up, the second ends down. A third, not in the window, goes down.
    await feed.send([result(flapping, i % 2 == 0, start + i * 200) for i in range(11)])
    await feed.send([result(broken, i % 2 == 0, start + i * 200) for i in range(12)])
    await feed.send([result(outside, False, start + 100)])
    [down] = await events.wait_for("website.down")
    assert down["websiteId"] == outside  # announced at once: it is in no window

    # At the window's end (the timer, no new result): the one still down, once.
    announced = await events.wait_for("website.down", count=2, timeout=20)
    assert announced[1]["websiteId"] == broken
    assert announced[1]["timestamp"] == end
    assert announced[1]["reason"] == "still down after maintenance: status: HTTP 500"
    assert announced[1]["incidentId"] is not None
    # After it, the monitor recovers: its up is announced, and nothing else was in between.
    await feed.send([result(broken, True, now_ms())])
    [up] = await events.wait_for("website.up")
    assert up["websiteId"] == broken
    assert [(e["type"], e["websiteId"]) for e in events.events] == [
        ("website.down", outside),
        ("website.down", broken),
        ("website.up", broken),
    ]
    # Recorded all the same: every incident of the flaps, every check (flagged), none of them in uptime.
    opened = await pool.fetchval("SELECT count(*) FROM incidents WHERE monitor_id = $1", flapping)
    assert opened == 5
    flagged = await pool.fetchval("SELECT count(*) FROM checks WHERE monitor_id = $1 AND in_maintenance", flapping)
    assert flagged == 11
    hours = await pool.fetchrow(
        "SELECT sum(checks) AS checks, sum(maintenance) AS maintenance FROM check_hours WHERE monitor_id = $1",
        flapping,
    )
    assert (hours["checks"], hours["maintenance"]) == (0, 11)
    state = await pool.fetchval("SELECT state FROM monitor_state WHERE monitor_id = $1", flapping)
    assert state["status"] == "up" and state["hold"] is None
    assert not evaluators.crashes


async def test_a_window_created_and_deleted_while_the_evaluator_runs_applies_without_a_restart(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    (mid,) = await make_monitors(pool, 1)
    owner = await owner_of(pool, mid)
    evaluators.start()
    await feed.send([result(mid, True, now_ms())])
    await eventually(lambda: pool.fetchval("SELECT state FROM monitor_state WHERE monitor_id = $1", mid))
    # Planned while the evaluator runs: it holds what follows, once the windows were read again.
    start = now_ms()
    window_id = await one_off_window(pool, start, start + 3_600_000, [mid])

    async def in_maintenance() -> bool:
        await feed.send([result(mid, True, now_ms())])
        flagged: bool = await pool.fetchval("SELECT bool_or(in_maintenance) FROM checks WHERE monitor_id = $1", mid)
        return flagged

    await eventually(in_maintenance, timeout=WINDOWS_CACHE_S * 3)
    await feed.send([result(mid, False, now_ms())])
    state = await eventually(
        lambda: pool.fetchval(
            "SELECT state FROM monitor_state WHERE monitor_id = $1 AND state->'hold' IS NOT NULL"
            " AND state->>'status' = 'down'",
            mid,
        )
    )
    assert events.events == []  # down, and nobody heard: it is in maintenance
    # Deleted an hour early: the monitor, still down, is announced once, now, not at the end it had.
    deleted_at = now_ms()
    assert await maintenance.delete_owned(pool, owner, window_id)
    [down] = await events.wait_for("website.down", timeout=WINDOWS_CACHE_S * 3)
    assert down["reason"] == "still down after maintenance: status: HTTP 500"
    assert deleted_at <= down["timestamp"] < start + 60_000
    await feed.send([result(mid, False, now_ms())])
    state = await eventually(lambda: pool.fetchval("SELECT state FROM monitor_state WHERE monitor_id = $1", mid))
    assert state["hold"] is None
    assert [e["type"] for e in events.events] == ["website.down"]
    assert not evaluators.crashes


async def test_a_weekly_window_in_berlin_starts_at_local_time_on_both_sides_of_the_spring_change(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    (mid,) = await make_monitors(pool, 1)
    owner = await owner_of(pool, mid)
    # Sundays 01:00 to 03:00 in Berlin: 00:00-02:00 UTC in winter (CET), 23:00-01:00 UTC in summer (CEST).
    await maintenance.create(
        pool,
        owner,
        MaintenanceIn(
            name="backups", days=["sun"], at="01:00", duration=7200, time_zone="Europe/Berlin", monitor_ids=[mid]
        ),
    )
    evaluators.start()
    script = [
        (ms(2025, 3, 29, 23, 30), True),  # Sat 00:30 CET: before the window
        (ms(2025, 3, 30, 0, 30), False),  # Sun 01:30 CET: inside, held (the clocks change at 02:00 CET)
        (ms(2025, 3, 30, 1, 30), True),  # 03:30 CEST: still inside (two hours from 01:00 CET), held
        (ms(2025, 3, 30, 2, 10), False),  # 04:10 CEST: after it, announced
        (ms(2025, 3, 30, 3, 0), True),  # announced
        (ms(2025, 4, 5, 22, 30), True),  # Sun 00:30 CEST: before the next one
        (ms(2025, 4, 5, 23, 30), False),  # 01:30 CEST: inside (a UTC-fixed window would alert here), held
        (ms(2025, 4, 6, 0, 30), True),  # 02:30 CEST: inside, held
        (ms(2025, 4, 6, 1, 30), False),  # 03:30 CEST: after it (a CET-fixed window would hold this), announced
    ]
    await feed.send([result(mid, ok, at) for at, ok in script])
    downs = await events.wait_for("website.down", count=2)
    ups = await events.wait_for("website.up")
    assert [e["timestamp"] for e in downs] == [ms(2025, 3, 30, 2, 10), ms(2025, 4, 6, 1, 30)]
    assert [e["timestamp"] for e in ups] == [ms(2025, 3, 30, 3, 0)]
    flagged = await pool.fetch(
        "SELECT checked_at FROM checks WHERE monitor_id = $1 AND in_maintenance ORDER BY checked_at", mid
    )
    assert [round(r["checked_at"].timestamp() * 1000) for r in flagged] == [
        ms(2025, 3, 30, 0, 30),
        ms(2025, 3, 30, 1, 30),
        ms(2025, 4, 5, 23, 30),
        ms(2025, 4, 6, 0, 30),
    ]
    incidents = await eventually(lambda: pool.fetchval("SELECT count(*) FROM incidents WHERE monitor_id = $1", mid))
    assert incidents == 4  # two held, two announced: every one recorded
    assert not evaluators.crashes
