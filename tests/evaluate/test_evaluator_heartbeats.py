"""A cron heartbeat in a time zone through the evaluator, the real Kafka and PostgreSQL, on a clock moved ahead.

Waiting for a real cron time would take up to a day; the evaluator takes
its clock as a parameter, so the test moves it past the deadline instead.
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from tests.evaluate.test_evaluator import (  # noqa: F401 (fixtures)
    Feed,
    Running,
    evaluators,
    events,
    feed,
    kafka_producer,
    make_monitors,
)
from tests.support import EventReader, eventually
from uptimed.check import CheckResult, CheckStatus
from uptimed.evaluate.heartbeat import SETTLE_MS
from uptimed.monitor import PUSH_REGION
from uptimed.probe.heartbeat import HeartbeatOptions


async def test_a_cron_heartbeat_in_tokyo_goes_down_once_at_its_deadline_and_up_on_the_next_ping(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    options = {"cron": "30 9 * * 1-5", "timezone": "Asia/Tokyo", "grace": 900}
    (mid,) = await make_monitors(pool, 1, kind="heartbeat", options={"heartbeat": options})
    ahead = [0.0]
    evaluators.start(clock=lambda: time.time() + ahead[0])

    pinged_ms = time.time_ns() // 1_000_000
    await feed.send([CheckResult(monitor_id=mid, region=PUSH_REGION, status=CheckStatus.UP, checked_at_ms=pinged_ms)])

    async def timer_set() -> int | None:
        wake = await pool.fetchval("SELECT wake_at FROM monitor_state WHERE monitor_id = $1", mid)
        return int(wake.timestamp() * 1000) if wake is not None else None

    deadline = HeartbeatOptions.model_validate(options).deadline_ms(pinged_ms)
    assert await eventually(timer_set) == deadline + SETTLE_MS
    due = datetime.fromtimestamp((deadline - 900_000) / 1000, ZoneInfo("Asia/Tokyo"))
    assert (due.hour, due.minute, due.weekday() < 5) == (9, 30, True)

    ahead[0] = (deadline + SETTLE_MS) / 1000 - time.time() + 0.2  # the clock passes the deadline
    [down] = await events.wait_for("website.down", timeout=15)
    assert down["timestamp"] == deadline
    assert down["reason"].startswith("missed: no ping for ")
    assert down["reason"].endswith("(expected 30 9 * * 1-5 (Asia/Tokyo), 15m grace)")

    back_ms = deadline + 60_000  # a ping a minute after the deadline, on the moved clock
    await feed.send([CheckResult(monitor_id=mid, region=PUSH_REGION, status=CheckStatus.UP, checked_at_ms=back_ms)])
    [up] = await events.wait_for("website.up", timeout=15)
    assert up["downtimeSeconds"] == 60
    assert len(events.of("website.down")) == 1
    assert await timer_set() == HeartbeatOptions.model_validate(options).deadline_ms(back_ms) + SETTLE_MS
    assert not evaluators.crashes


async def test_a_shorter_period_edited_in_moves_the_pending_miss_earlier_and_keeps_it_across_a_restart(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    hourly = {"period": 3600, "grace": 600}
    (mid,) = await make_monitors(pool, 1, kind="heartbeat", options={"heartbeat": hourly})
    ahead = [0.0]
    first = evaluators.start(clock=lambda: time.time() + ahead[0])

    pinged_ms = time.time_ns() // 1_000_000
    await feed.send([CheckResult(monitor_id=mid, region=PUSH_REGION, status=CheckStatus.UP, checked_at_ms=pinged_ms)])

    async def wake_at() -> int | None:
        wake = await pool.fetchval("SELECT wake_at FROM monitor_state WHERE monitor_id = $1", mid)
        return int(wake.timestamp() * 1000) if wake is not None else None

    assert await eventually(wake_at) == HeartbeatOptions.model_validate(hourly).deadline_ms(pinged_ms) + SETTLE_MS

    # Edited to every 10 minutes: the miss is now due 50 minutes earlier, and PostgreSQL says so
    # (the next evaluator to own the partition starts from it).
    every_10m = {"period": 600, "grace": 60}
    await pool.execute(
        "UPDATE monitors SET options = $2, updated_at = now() WHERE id = $1", mid, {"heartbeat": every_10m}
    )
    deadline = HeartbeatOptions.model_validate(every_10m).deadline_ms(pinged_ms)

    async def moved() -> bool:
        return await wake_at() == deadline + SETTLE_MS

    await eventually(moved)
    assert not events.of("website.down")  # woken by the edit, nothing was due yet

    await evaluators.stop(first)
    ahead[0] = (deadline + SETTLE_MS) / 1000 - time.time() + 0.2  # past the new deadline, long before the old one
    evaluators.start(clock=lambda: time.time() + ahead[0])
    [down] = await events.wait_for("website.down", timeout=20)
    assert down["timestamp"] == deadline
    assert down["reason"].endswith("(expected every 10m, 1m grace)")
    assert not evaluators.crashes
