"""The probe worker against the real Redis queue and a local HTTP target (Kafka is the forwarder's: not here)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from uptimed.monitor import Monitor
from uptimed.probe import worker as worker_module
from uptimed.probe.http import make_session
from uptimed.probe.queue import GROUP, EncodedMonitor, ProbeJob, ProbeQueue
from uptimed.probe.worker import READ_BATCH_SHARE, ProbeWorker


class RecordingQueue(ProbeQueue):
    """The real queue, remembering how many jobs each read asked for and the results completed."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str) -> None:
        super().__init__(redis, prefix=prefix, region="default")
        self.reads: list[tuple[int, int]] = []
        """(count asked for, jobs returned) per XREADGROUP."""
        self.completed: list[dict[str, Any]] = []

    async def read(self, consumer: str, *, count: int, block_ms: int) -> list[ProbeJob]:
        jobs = await super().read(consumer, count=count, block_ms=block_ms)
        self.reads.append((count, len(jobs)))
        return jobs

    async def complete(self, done: list[tuple[ProbeJob, bytes]]) -> None:
        await super().complete(done)
        self.completed += [json.loads(result) for _, result in done]


async def stored_results(redis: aioredis.Redis, queue: ProbeQueue) -> list[dict[str, Any]]:
    """The results waiting in the region's result stream for the forwarder."""
    entries = await redis.xrange(queue.results)
    for _, fields in entries:
        assert json.loads(fields[b"v"])["monitor_id"] == int(fields[b"k"])
    return [json.loads(fields[b"v"]) for _, fields in entries]


class SlowTarget:
    """Answers after ``delay_s``, or once ``gate`` opens; counts the requests in progress."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.gate = asyncio.Event()
        self.gate.set()
        self.active = 0
        self.most_active = 0
        self.paths: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        self.paths.append(request.path)
        try:
            await asyncio.sleep(self.delay_s)
            await self.gate.wait()
            return web.Response(text="ok")
        finally:
            self.active -= 1


@pytest.fixture
async def slow_target() -> AsyncIterator[SlowTarget]:
    target = SlowTarget()
    app = web.Application()
    app.router.add_get("/{tail:.*}", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield target
    target.gate.set()
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # Far more connections than any worker here runs checks: the session never hides a worker's excess.
    session = make_session(limit=1000)
    yield session
    await session.close()


def monitor(mid: int, target: SlowTarget) -> Monitor:
    return Monitor(id=mid, owner_id=1, name=f"m{mid}", target=f"{target.url}/m{mid}", interval=60, timeout=5)


async def enqueue(queue: ProbeQueue, monitors: list[Monitor], *, due_ms: int | None = None) -> None:
    now_ms = int(time.time() * 1000)
    due = now_ms if due_ms is None else due_ms
    added = await queue.enqueue([(EncodedMonitor.of(m), due, now_ms + 60_000) for m in monitors], now_ms=now_ms)
    assert added == len(monitors)


def worker(queue: ProbeQueue, session: aiohttp.ClientSession, **options: Any) -> ProbeWorker:
    return ProbeWorker(queue=queue, session=session, consumer="worker-1", **{"concurrency": 10, **options})


async def wait_until(condition: Any, timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


async def settled(redis: aioredis.Redis, queue: ProbeQueue) -> tuple[int, int]:
    """(jobs read but not acknowledged, in-flight marks)."""
    pending = await redis.xpending(queue.stream, GROUP)
    return pending["pending"], await redis.hlen(queue.inflight)


async def test_jobs_are_read_in_batches_and_never_more_checks_than_the_concurrency(
    redis: aioredis.Redis, key_prefix: str, slow_target: SlowTarget, session: aiohttp.ClientSession
) -> None:
    slow_target.delay_s = 0.02
    queue = RecordingQueue(redis, prefix=key_prefix)
    await queue.ensure_group()
    monitors = [monitor(mid, slow_target) for mid in range(1, 401)]
    await enqueue(queue, monitors)
    probe = worker(queue, session, concurrency=50)
    batch = int(50 * READ_BATCH_SHARE)

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await wait_until(lambda: len(queue.completed) == len(monitors))
        await probe.drain()
        tg.cancel_scope.cancel()

    results = await stored_results(redis, queue)
    assert sorted(r["monitor_id"] for r in results) == [m.id for m in monitors]
    assert all(r["status"] == "up" for r in results)
    assert slow_target.most_active <= 50
    assert slow_target.most_active > 50 - batch  # it does fill its concurrency
    # Never one job per round trip: each read waits for a tenth of the concurrency to be free.
    assert all(count >= batch for count, _ in queue.reads)
    assert sum(1 for _, got in queue.reads if got) <= len(monitors) / batch
    assert await settled(redis, queue) == (0, 0)


async def test_drain_finishes_the_checks_in_flight_and_takes_no_more(
    redis: aioredis.Redis, key_prefix: str, slow_target: SlowTarget, session: aiohttp.ClientSession
) -> None:
    slow_target.gate.clear()
    queue = RecordingQueue(redis, prefix=key_prefix)
    await queue.ensure_group()
    probe = worker(queue, session)

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await enqueue(queue, [monitor(mid, slow_target) for mid in range(1, 6)])
        await wait_until(lambda: slow_target.active == 5)
        tg.start_soon(probe.drain)
        await wait_until(lambda: probe.draining)
        await enqueue(queue, [monitor(mid, slow_target) for mid in range(6, 9)])
        # Nothing to await for "it did not read them": a draining worker is given 0.2 s to make that mistake.
        await anyio.sleep(0.2)
        slow_target.gate.set()
        await wait_until(lambda: probe.running == 0)
        await probe.drain()  # returns once the five are stored and acknowledged
        tg.cancel_scope.cancel()

    assert sorted(r["monitor_id"] for r in await stored_results(redis, queue)) == [1, 2, 3, 4, 5]
    assert len(slow_target.paths) == 5
    pending, in_flight = await settled(redis, queue)
    # The three that came later stay in flight, unread or pending, for another worker.
    assert in_flight == 3 and pending <= 3


async def test_the_jobs_of_a_dead_worker_are_reclaimed_and_stale_ones_dropped(
    redis: aioredis.Redis, key_prefix: str, slow_target: SlowTarget, session: aiohttp.ClientSession
) -> None:
    queue = RecordingQueue(redis, prefix=key_prefix)
    await queue.ensure_group()
    fresh = [monitor(mid, slow_target) for mid in range(1, 4)]
    stale = monitor(4, slow_target)
    await enqueue(queue, fresh)
    await enqueue(queue, [stale], due_ms=int(time.time() * 1000) - 2 * 60_000)  # older than its interval
    assert len(await queue.read("dead-worker", count=10, block_ms=100)) == 4  # and then it died

    probe = worker(queue, session, reclaim_idle_s=0.2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await wait_until(lambda: len(queue.completed) == 3)
        await wait_until(lambda: probe.running == 0)
        await probe.drain()
        tg.cancel_scope.cancel()

    assert sorted(r["monitor_id"] for r in await stored_results(redis, queue)) == [1, 2, 3]
    assert sorted(slow_target.paths) == ["/m1", "/m2", "/m3"]
    assert await settled(redis, queue) == (0, 0)


async def wait_stored(redis: aioredis.Redis, queue: ProbeQueue, count: int, *, timeout: float = 10.0) -> None:
    """Until the result stream holds ``count`` results (XREAD blocks until the next one arrives)."""
    with anyio.fail_after(timeout):
        while len(await stored_results(redis, queue)) < count:
            await redis.xread({queue.results: "$"}, block=200)


async def test_a_steady_result_waits_for_company_and_anything_else_is_stored_at_once(
    redis: aioredis.Redis,
    key_prefix: str,
    slow_target: SlowTarget,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Long enough that only a result worth telling (or a stop) can be what stores a held one.
    monkeypatch.setattr(worker_module, "STEADY_HOLD_S", 30.0)
    shop, blog = monitor(1, slow_target), monitor(2, slow_target)
    blog_down = blog.model_copy(update={"target": "http://127.0.0.1:9/closed"})
    queue = RecordingQueue(redis, prefix=key_prefix)
    await queue.ensure_group()
    probe = worker(queue, session)

    async def statuses() -> list[tuple[int, str]]:
        """What the forwarder would read, in order (the queue's own record lags its Redis transaction)."""
        return [(r["monitor_id"], r["status"]) for r in await stored_results(redis, queue)]

    async with anyio.create_task_group() as tg:
        tg.start_soon(probe.run)
        await enqueue(queue, [shop])  # its first result here: nothing known before it, so stored at once
        await wait_stored(redis, queue, 1)
        await enqueue(queue, [shop])  # up again, as before: steady, it waits
        await wait_until(lambda: probe.checks_done == 2)
        assert await statuses() == [(1, "up")]

        await enqueue(queue, [blog_down])  # down: stored at once, and the steady result that waited goes with it
        await wait_stored(redis, queue, 3)
        assert await statuses() == [(1, "up"), (1, "up"), (2, "down")]

        await enqueue(queue, [blog])  # the first up after a down is news: at once
        await wait_stored(redis, queue, 4)
        await enqueue(queue, [shop])  # steady again; a graceful stop stores what waits
        await wait_until(lambda: probe.checks_done == 5)
        assert len(await statuses()) == 4
        await probe.drain()
        tg.cancel_scope.cancel()

    assert await statuses() == [(1, "up"), (1, "up"), (2, "down"), (2, "up"), (1, "up")]
    assert await settled(redis, queue) == (0, 0)  # every job acknowledged with its result


async def test_a_held_result_is_stored_within_a_tenth_of_its_interval(
    redis: aioredis.Redis, key_prefix: str, slow_target: SlowTarget, session: aiohttp.ClientSession
) -> None:
    shop = monitor(1, slow_target).model_copy(update={"interval": 1.0, "timeout": 0.5})
    queue = RecordingQueue(redis, prefix=key_prefix)
    await queue.ensure_group()
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker(queue, session).run)
        for n in range(1, 4):
            await enqueue(queue, [shop])
            # Stored by the hold's timer (0.1 s here), before the monitor's next check could be due.
            await wait_stored(redis, queue, n, timeout=1.0)
        tg.cancel_scope.cancel()
