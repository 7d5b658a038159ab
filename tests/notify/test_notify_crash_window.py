"""A process killed while its webhook request is in flight: the event arrives at most twice, and the log says so.

Two real `uptimed run` processes share the notification group and the
deliveries; the receiver is slow, so the kill lands during a request.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer

from tests.notify.test_notify_delivery import db, down_event, owner_with_webhooks, producer, publish  # noqa: F401
from tests.support import DaemonProcess, Stack, eventually

DELIVERY_TIMEOUT = 4.0
SETTINGS = f"[notify]\nbackoff_initial = 0.3\nmax_attempts = 4\ndelivery_timeout = {DELIVERY_TIMEOUT}\n"


@dataclass
class Arrival:
    path: str
    event_id: str
    attempt: int
    at: float


@dataclass
class SlowReceiver:
    """Answers 200 after ``delay()`` seconds; holds the first request to ``hold_first`` until the test kills its sender."""

    delay: Any = lambda: 0.0
    hold_first: str | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    port: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> SlowReceiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        arrival = Arrival(
            request.path, request.headers["X-Uptimed-Event-Id"], int(request.headers["X-Uptimed-Attempt"]),
            asyncio.get_running_loop().time(),
        )
        async with self._changed:
            self.arrivals.append(arrival)
            self._changed.notify_all()
        if request.path == self.hold_first and len([a for a in self.arrivals if a.path == request.path]) == 1:
            await asyncio.sleep(3600)  # never answers: its sender is killed meanwhile
        await asyncio.sleep(self.delay())
        return web.Response(text="ok")

    async def wait_for(self, count: int, *, timeout: float) -> list[Arrival]:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.arrivals) >= count)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{len(self.arrivals)} of {count} requests within {timeout} s") from None
        return self.arrivals


@pytest.fixture
async def receiver() -> AsyncIterator[SlowReceiver]:
    server = await SlowReceiver().start()
    yield server
    await server.stop()


async def two_daemons(stack: Stack, start_daemon) -> list[DaemonProcess]:
    return list(await asyncio.gather(start_daemon(stack.toml(SETTINGS)), start_daemon(stack.toml(SETTINGS))))


def holder(daemons: list[DaemonProcess], lease_owner: str) -> DaemonProcess:
    """The daemon whose process identity (``host:pid:suffix``) is ``lease_owner``."""
    pid = int(lease_owner.split(":")[1])
    return next(d for d in daemons if d.process.pid == pid)


async def rows(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM notification_log ORDER BY id")


async def test_a_kill_during_the_request_retries_within_the_timeout_plus_5_s_as_attempt_2(
    stack: Stack, db, receiver: SlowReceiver, producer: AIOKafkaProducer, start_daemon
) -> None:
    user, monitor, ids = await owner_with_webhooks(db, receiver, "/hook")  # type: ignore[arg-type]
    receiver.hold_first = "/hook"
    daemons = await two_daemons(stack, start_daemon)
    event = down_event(user, monitor)

    await publish(producer, stack, event.model_dump_json().encode())
    [first] = await receiver.wait_for(1, timeout=30)
    [row] = await rows(db)
    assert (row["attempts"], row["attempt_started_at"] is not None) == (1, True), "on record before the request left"
    owner = row["lease_owner"]
    killed = holder(daemons, owner)
    killed.process.send_signal(signal.SIGKILL)
    killed_at = asyncio.get_running_loop().time()
    await killed.process.wait()

    _, second = await receiver.wait_for(2, timeout=DELIVERY_TIMEOUT + 10)
    assert second.at - killed_at <= DELIVERY_TIMEOUT + 5, f"retried {second.at - killed_at:.1f} s after the kill"
    assert (first.event_id, first.attempt) == (str(event.eventId), 1)
    assert (second.event_id, second.attempt) == (str(event.eventId), 2)

    async def sent() -> asyncpg.Record | None:
        [row] = await rows(db)
        return row if row["status"] == "SENT" else None

    row = await eventually(sent)
    assert row["attempts"] == 2
    log = row["attempt_log"] if isinstance(row["attempt_log"], list) else json.loads(row["attempt_log"])
    assert [(entry["attempt"], entry["outcome"]) for entry in log] == [(1, "unknown"), (2, "sent")]
    assert log[0]["owner"] == owner
    assert row["error_message"].startswith("attempt 1: outcome unknown")
    survivor = next(d for d in daemons if d is not killed)
    await survivor.wait_for("delivery.outcome_unknown", attempt=1)
    assert len(receiver.arrivals) == 2
    print(f"crash window: retried {second.at - killed_at:.2f} s after the kill (delivery_timeout {DELIVERY_TIMEOUT:g} s)")


async def test_hundreds_of_events_with_a_kill_arrive_once_except_where_the_log_says_unknown(
    stack: Stack, db, receiver: SlowReceiver, producer: AIOKafkaProducer, start_daemon
) -> None:
    user, monitor, ids = await owner_with_webhooks(db, receiver, "/a", "/b")  # type: ignore[arg-type]
    receiver.delay = lambda: random.uniform(0.05, 0.4)
    daemons = await two_daemons(stack, start_daemon)
    events = [down_event(user, monitor) for _ in range(150)]
    await asyncio.gather(*(publish(producer, stack, e.model_dump_json().encode(), key=str(n % 7).encode())
                           for n, e in enumerate(events)))

    await receiver.wait_for(100, timeout=60)
    in_flight = await db.fetch("SELECT lease_owner FROM notification_log WHERE attempt_started_at IS NOT NULL")
    assert in_flight, "the kill should land while requests are in flight"
    killed = holder(daemons, in_flight[0]["lease_owner"])
    killed.process.send_signal(signal.SIGKILL)
    await killed.process.wait()

    async def all_sent() -> list[asyncpg.Record] | None:
        found = await rows(db)
        return found if len(found) == 300 and all(r["status"] == "SENT" for r in found) else None

    found = await eventually(all_sent, timeout=60)
    received = Counter((a.event_id, a.path) for a in receiver.arrivals)
    by_path = {integration: path for path, integration in ids.items()}
    unknown = 0
    for row in found:
        key = (str(row["event_id"]), by_path[row["integration_id"]])
        log = row["attempt_log"] if isinstance(row["attempt_log"], list) else json.loads(row["attempt_log"])
        outcomes = [entry["outcome"] for entry in log]
        assert received[key] >= 1, key
        if "unknown" in outcomes:
            unknown += 1
            assert received[key] <= 2 and row["attempts"] == 2, (key, outcomes)
        else:
            assert received[key] == 1 and row["attempts"] == 1, (key, received[key], outcomes)
    assert unknown > 0
    print(f"{len(found)} deliveries, {unknown} cut short by the kill, {sum(received.values())} requests")


async def test_hundreds_of_events_without_a_kill_are_each_sent_once(
    stack: Stack, db, receiver: SlowReceiver, producer: AIOKafkaProducer, start_daemon
) -> None:
    user, monitor, ids = await owner_with_webhooks(db, receiver, "/a", "/b")  # type: ignore[arg-type]
    receiver.delay = lambda: random.uniform(0.0, 0.2)
    await two_daemons(stack, start_daemon)
    events = [down_event(user, monitor) for _ in range(200)]
    await asyncio.gather(*(publish(producer, stack, e.model_dump_json().encode(), key=str(n % 7).encode())
                           for n, e in enumerate(events)))

    async def all_sent() -> list[asyncpg.Record] | None:
        found = await rows(db)
        return found if len(found) == 400 and all(r["status"] == "SENT" for r in found) else None

    found = await eventually(all_sent, timeout=60)
    received = Counter((a.event_id, a.path) for a in receiver.arrivals)
    assert len(received) == 400 and set(received.values()) == {1}
    assert {a.attempt for a in receiver.arrivals} == {1}
    assert {row["attempts"] for row in found} == {1}
    assert {uuid.UUID(e) for e, _ in received} == {e.eventId for e in events}
