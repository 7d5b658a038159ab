"""The monitoring pipeline end to end, against real Redis, Kafka and PostgreSQL.

A local HTTP target is switched between healthy and broken; an independent
Kafka consumer reads what uptimed publishes on ``website.events``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support import EventReader, Stack, Target, eventually


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = await Target().start()
    yield server
    await server.stop()


@pytest.fixture
async def events(topics: Stack) -> AsyncIterator[EventReader]:
    stack = topics
    reader = await EventReader(stack.bootstrap, f"{stack.prefix}.website.events").start()
    yield reader
    await reader.stop()


def monitor(url: str, name: str = "site", **fields: object) -> str:
    values = {
        "owner": "alice",
        "name": name,
        "target": url,
        "interval": 1,
        "timeout": 0.5,
        "failure_threshold": 3,
        "success_threshold": 2,
        **fields,
    }
    body = "\n".join(f"{k} = {_toml(v)}" for k, v in values.items())
    return f"[[monitors]]\n{body}\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


async def test_down_after_threshold_then_up_exactly_once(
    stack: Stack, target: Target, events: EventReader, start_daemon
) -> None:
    daemon = await start_daemon(stack.toml(monitor(target.url())))
    await target.wait_hits(3, status=200)

    # Two failures, below the threshold of three: nothing.
    target.status = 500
    await target.wait_hits(2, status=500)
    target.status = 200
    await target.wait_hits(3, status=200)
    assert events.events == []

    target.status = 500
    failures_before = target.count(status=500)
    [down] = await events.wait_for("website.down")
    assert target.count(status=500) - failures_before >= 3
    assert down["websiteId"] > 0 and down["url"] == target.url() and down["name"] == "site"
    assert down["regions"] == {"default": "down"} and "500" in down["reason"]
    assert down["incidentId"] is not None and down["reminder"] is False

    await target.wait_hits(3, status=500)  # still down: no second event
    target.status = 200
    [up] = await events.wait_for("website.up")
    assert up["incidentId"] == down["incidentId"] and up["downtimeSeconds"] > 0
    await target.wait_hits(3, status=200)
    assert [e["type"] for e in events.events] == ["website.down", "website.up"]

    conn = await asyncpg.connect(stack.dsn)
    incident = await conn.fetchrow("SELECT * FROM incidents WHERE id = $1", down["incidentId"])
    assert incident["resolved_at"] is not None and "500" in incident["cause"]
    stored = await conn.fetchval("SELECT count(*) FROM checks WHERE monitor_id = $1", down["websiteId"])
    assert stored >= 12
    await conn.close()
    assert await daemon.stop() == 0


async def test_region_quorum(stack: Stack, target: Target, events: EventReader, start_daemon) -> None:
    stack.regions = ["eu", "us"]
    await start_daemon(stack.toml(monitor(target.url(), quorum=2)))
    await target.wait_hits(2, region="eu", status=200)
    await target.wait_hits(2, region="us", status=200)

    target.by_region["eu"] = 500
    await target.wait_hits(6, region="eu", status=500)
    assert events.events == [], "one region alone must not take the monitor down"

    target.by_region["us"] = 500
    [down] = await events.wait_for("website.down")
    assert down["regions"] == {"eu": "down", "us": "down"}
    await target.wait_hits(2, region="us", status=500)
    assert len(events.of("website.down")) == 1


async def test_reminders_while_down_and_none_after_up(
    stack: Stack, target: Target, events: EventReader, start_daemon
) -> None:
    target.status = 500
    await start_daemon(stack.toml(monitor(target.url(), failure_threshold=1, success_threshold=1, repeat_interval=2)))
    [down] = await events.wait_for("website.down", reminder=False)
    reminders = await events.wait_for("website.down", reminder=True, count=2, timeout=15)
    gap = (reminders[1]["timestamp"] - reminders[0]["timestamp"]) / 1000
    assert 1.5 <= gap <= 3.5, gap
    assert all(r["incidentId"] == down["incidentId"] for r in reminders)

    target.status = 200
    await events.wait_for("website.up")
    sent = len(events.of("website.down", reminder=True))
    await target.wait_hits(4, status=200)
    assert len(events.of("website.down", reminder=True)) == sent


async def test_recovery_while_stopped_gives_one_up_after_restart(
    stack: Stack, target: Target, events: EventReader, start_daemon
) -> None:
    config = stack.toml(monitor(target.url(), failure_threshold=2, success_threshold=2))
    target.status = 500
    first = await start_daemon(config)
    await events.wait_for("website.down")
    assert await first.stop(signal.SIGTERM) == 0

    target.status = 200
    second = await start_daemon(config)
    [up] = await events.wait_for("website.up")
    await target.wait_hits(3, status=200)
    assert [e["type"] for e in events.events] == ["website.down", "website.up"]
    assert up["downtimeSeconds"] > 0
    assert await second.stop() == 0


async def test_a_stop_right_after_publishing_still_records_the_event_as_published(
    stack: Stack, target: Target, events: EventReader, start_daemon
) -> None:
    """A graceful stop finishes the batch in flight: the next start has nothing to publish again."""
    config = stack.toml(monitor(target.url(), failure_threshold=1))
    target.status = 500
    daemon = await start_daemon(config, env={"UPTIMED_FAILPOINTS": "evaluate.before_mark_published=1.5"})
    await events.wait_for("website.down")
    await daemon.wait_for("failpoint.hit")
    assert await daemon.stop(signal.SIGTERM) == 0

    conn = await asyncpg.connect(stack.dsn)
    try:
        unpublished = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
    finally:
        await conn.close()
    assert unpublished == 0
    second = await start_daemon(config)
    await target.wait_hits(2)
    assert not second.events("evaluator.outbox_republish")
    assert len(events.of("website.down")) == 1


async def test_two_processes_split_a_region_and_survive_a_kill(stack: Stack, target: Target, start_daemon) -> None:
    names = [f"m{i}" for i in range(8)]
    config = stack.toml("".join(monitor(target.url(f"/{n}"), name=n, interval=2, timeout=0.5) for n in names))
    a = await start_daemon(config)
    b = await start_daemon(config)
    await target.wait_hits(len(names) * 3, timeout=30)

    # Over a window, each monitor is checked about once per interval (2 s), not once per process.
    window_start = dict(target.per_path())
    started = asyncio.get_running_loop().time()
    await target.wait_hits(len(names) * 4, timeout=30)
    elapsed = asyncio.get_running_loop().time() - started
    counts = {p: target.per_path()[p] - window_start.get(p, 0) for p in window_start}
    assert all(c <= elapsed / 2 + 2 for c in counts.values()), (counts, elapsed)
    assert len(a.events("probe.checked")) > 0 and len(b.events("probe.checked")) > 0, "both processes probe"

    # Kill one (the first started, so the scheduler's leader): the other takes
    # over scheduling and keeps every monitor checked within a few seconds.
    assert a.events("scheduler.leader") and not b.events("scheduler.leader")
    a.process.kill()
    await a.process.wait()
    killed_at = asyncio.get_running_loop().time()
    before = dict(target.per_path())
    await target.wait_until(lambda: all(target.per_path()[f"/{n}"] >= before[f"/{n}"] + 2 for n in names), timeout=20)
    assert asyncio.get_running_loop().time() - killed_at < 15
    assert b.events("scheduler.leader")
    assert await b.stop() == 0


async def test_unparseable_check_is_dead_lettered_and_the_partition_keeps_flowing(
    stack: Stack, target: Target, events: EventReader, start_daemon
) -> None:
    from aiokafka import AIOKafkaProducer

    dead = await EventReader(stack.bootstrap, f"{stack.prefix}.dead-letters").start()
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        # Every partition gets garbage before uptimed's first result.
        for partition in range(3):
            await producer.send_and_wait(f"{stack.prefix}.checks", b"garbage", partition=partition)
        target.status = 500
        await start_daemon(stack.toml(monitor(target.url(), failure_threshold=1)))
        await events.wait_for("website.down")
        records = await dead.wait_records(3)
        assert all(r.value == b"garbage" for r in records)
        assert all(dict(r.headers)["reason"].startswith(b"invalid check result") for r in records)
    finally:
        await producer.stop()
        await dead.stop()


async def test_monitor_removed_from_the_file_is_disabled_not_deleted(
    stack: Stack, target: Target, start_daemon
) -> None:
    first = await start_daemon(stack.toml(monitor(target.url("/a"), name="a") + monitor(target.url("/b"), name="b")))
    conn = await asyncpg.connect(stack.dsn)
    count_b = "SELECT count(*) FROM checks c JOIN monitors m ON m.id = c.monitor_id WHERE m.config_key = 'b'"
    await eventually(lambda: conn.fetchval(count_b))
    assert await first.stop() == 0

    second = await start_daemon(stack.toml(monitor(target.url("/a"), name="a", interval=2)))
    synced = await second.wait_for("config.synced")
    assert (synced["created"], synced["updated"], synced["disabled"]) == (0, 1, 1)
    rows = {r["config_key"]: r for r in await conn.fetch("SELECT config_key, enabled, interval_s FROM monitors")}
    checks_of_b = await conn.fetchval(count_b)
    await conn.close()
    assert rows["a"]["enabled"] and rows["a"]["interval_s"] == 2
    assert not rows["b"]["enabled"] and checks_of_b >= 1, "history of a removed monitor is kept"
    assert await second.stop() == 0
