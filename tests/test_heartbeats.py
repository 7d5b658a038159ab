"""Heartbeats through real ``uptimed run`` processes: pings over HTTP, misses decided by the evaluator's timer.

The monitor is declared in the file (period 3 s, grace 1 s: a ping is
missed 4 s after the last, decided a second later); its ping token is read
from the database. What reaches ``website.events`` is counted: one DOWN per
miss, whatever restarts or second processes happen meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import asyncpg
import httpx
import pytest

from tests.support import DaemonProcess, EventReader, Stack, eventually, to_toml
from uptimed.probe.heartbeat import HeartbeatOptions

PERIOD_S, GRACE_S = 3, 1
HEARTBEAT = f"""
[[monitors]]
owner = "ops"
key = "nightly-backup"
name = "nightly backup"
kind = "heartbeat"
target = "backup@db1"
repeat_interval = "1h"
heartbeat = {{ period = "{PERIOD_S}s", grace = "{GRACE_S}s" }}
"""


@pytest.fixture
async def events(topics: Stack) -> AsyncIterator[EventReader]:
    reader = await EventReader(topics.bootstrap, f"{topics.prefix}.website.events").start()
    yield reader
    await reader.stop()


def config(stack: Stack) -> str:
    sections = stack.sections()
    sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": 0}
    return to_toml(sections) + HEARTBEAT


async def start(start_daemon: Any, stack: Stack) -> tuple[DaemonProcess, str]:
    daemon = await start_daemon(config(stack))
    listening = await daemon.wait_for("api.listening")
    return daemon, f"http://127.0.0.1:{listening['port']}"


async def ping_url(pool: asyncpg.Pool, base: str) -> str:
    token = await eventually(
        lambda: pool.fetchval("SELECT ping_token FROM monitors WHERE config_key = 'nightly-backup'")
    )
    return f"{base}/ping/{token}"


async def pinged(url: str, suffix: str = "", body: bytes | None = None) -> int:
    """Ping; the ms the daemon stamped on it lies between the two clock reads around the request."""
    async with httpx.AsyncClient() as client:
        before = time.time_ns() // 1_000_000
        answer = await (client.post(url + suffix, content=body) if body is not None else client.get(url + suffix))
        assert answer.status_code == 200, answer.text
        return before


async def state_of(pool: asyncpg.Pool) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT s.state, s.wake_at FROM monitor_state s JOIN monitors m ON m.id = s.monitor_id"
        " WHERE m.config_key = 'nightly-backup'"
    )


async def test_a_missed_ping_is_down_once_a_ping_is_up_fail_is_down_at_once_start_times_the_run(
    stack: Stack, topics: Stack, start_daemon: Any, pool: asyncpg.Pool, events: EventReader
) -> None:
    daemon, base = await start(start_daemon, stack)
    url = await ping_url(pool, base)

    sent = await pinged(url)
    [down] = await events.wait_for("website.down", timeout=30)
    deadline = HeartbeatOptions(period=PERIOD_S, grace=GRACE_S).deadline_ms
    assert deadline(sent) <= down["timestamp"] <= deadline(sent + 1000)
    assert down["reason"] == "missed: no ping for 4s (expected every 3s, 1s grace)"
    assert (down["url"], down["name"], down["regionId"]) == ("backup@db1", "nightly backup", "push")

    await pinged(url, body=b"all 42 tables copied")
    [up] = await events.wait_for("website.up")
    assert len(events.of("website.down")) == 1  # the miss was announced once
    assert up["downtimeSeconds"] is not None and up["downtimeSeconds"] >= 0

    await pinged(url, "/fail", body=b"disk full")
    [_, failed] = await events.wait_for("website.down", count=2, timeout=10)
    assert failed["reason"] == "reported: the job reported a failure"

    await pinged(url, "/start")
    await anyio.sleep(0.3)  # the job's run
    await pinged(url, "/0")
    [_, timed] = await events.wait_for("website.up", count=2, timeout=10)
    assert timed["responseTime"] is not None and 300 <= timed["responseTime"] < 5000
    messages = await pool.fetch("SELECT message FROM checks WHERE region = 'push' AND message IS NOT NULL")
    assert {r["message"] for r in messages} == {"all 42 tables copied", "disk full"}
    assert not daemon.events("probe.checked")  # a heartbeat is never checked by the probes


async def test_a_restart_in_the_grace_period_neither_loses_nor_doubles_the_miss(
    stack: Stack, topics: Stack, start_daemon: Any, pool: asyncpg.Pool, events: EventReader
) -> None:
    first, base = await start(start_daemon, stack)
    sent = await pinged(await ping_url(pool, base))

    async def timer_stored() -> Any:
        row = await state_of(pool)
        return row if row is not None and row["wake_at"] is not None else None

    await eventually(timer_stored)
    assert await first.stop() == 0  # within the grace period: the miss is not due yet
    assert not events.of("website.down")
    await start(start_daemon, stack)

    [down] = await events.wait_for("website.down", timeout=30)
    deadline = HeartbeatOptions(period=PERIOD_S, grace=GRACE_S).deadline_ms
    assert deadline(sent) <= down["timestamp"] <= deadline(sent + 1000)
    # One more deadline's worth for a second copy to show up, if one ever would.
    await anyio.sleep(PERIOD_S + GRACE_S + 2)
    assert len(events.of("website.down")) == 1
    stored = await pool.fetchval("SELECT count(*) FROM checks WHERE region = 'push' AND error_class = 'missed'")
    assert stored == 1


async def test_two_processes_never_both_report_a_miss(
    stack: Stack, topics: Stack, start_daemon: Any, pool: asyncpg.Pool, events: EventReader
) -> None:
    one, base_one = await start(start_daemon, stack)
    two, base_two = await start(start_daemon, stack)
    url = await ping_url(pool, base_one)
    other_url = url.replace(base_one, base_two)

    # Pings reach either process; both evaluators run, one owns the monitor's partition.
    await pinged(url)
    await pinged(other_url)
    [down] = await events.wait_for("website.down", timeout=30)
    await pinged(other_url)
    await events.wait_for("website.up", timeout=30)
    # The next miss, with the second process leaving the group in the middle of the grace period.
    await anyio.sleep(PERIOD_S / 2)
    assert await two.stop() == 0
    await events.wait_for("website.down", count=2, timeout=30)
    await anyio.sleep(PERIOD_S + GRACE_S + 2)

    downs = events.of("website.down")
    assert len(downs) == 2 and len({d["eventId"] for d in downs}) == 2
    decided = [line for d in (one, two) for line in d.events("monitor.changed") if line["type"] == "website.down"]
    assert len(decided) == 2, decided
    assert down["reason"].startswith("missed: no ping for")
