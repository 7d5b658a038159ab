"""The scheduler against the real Redis: batched enqueues on the exact grid, edits picked up as they happen."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections import defaultdict

import anyio
import redis.asyncio as aioredis

from uptimed.monitor import Monitor
from uptimed.probe.queue import ProbeQueue
from uptimed.probe.scheduler import ENQUEUE_TICK_S, Scheduler, enqueue_tick, next_due, phase_of
from uptimed.store.monitor_feed import EncodedMonitor, MonitorFeed


class RecordingQueue(ProbeQueue):
    """The real queue, remembering every batch the scheduler hands it."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str) -> None:
        super().__init__(redis, prefix=prefix, region="default")
        self.batches: list[tuple[int, list[tuple[EncodedMonitor, int, int]]]] = []
        self._changed = asyncio.Condition()

    async def enqueue(self, jobs: list[tuple[EncodedMonitor, int, int]], *, now_ms: int) -> int:
        # Recorded once Redis answered: a batch cut off by the end of a test counts nowhere, here as in the scheduler.
        added = await super().enqueue(jobs, now_ms=now_ms)
        async with self._changed:
            self.batches.append((now_ms, list(jobs)))
            self._changed.notify_all()
        return added

    async def wait_for_jobs(self, monitor_id: int, count: int) -> None:
        """Until the scheduler has asked for ``count`` jobs of ``monitor_id``."""
        async with self._changed:
            await self._changed.wait_for(lambda: sum(e.monitor.id == monitor_id for _, e, _ in self.jobs()) >= count)

    async def wait_for_batches(self, count: int) -> None:
        """Until the scheduler has enqueued ``count`` batches."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.batches) >= count)

    def jobs(self) -> list[tuple[int, EncodedMonitor, int]]:
        """(enqueued at ms, monitor, due ms) of every job the scheduler asked for."""
        return [(now_ms, encoded, due_ms) for now_ms, batch in self.batches for encoded, due_ms, _ in batch]


def monitor(mid: int, *, interval: float = 1.0, target: str = "http://127.0.0.1:9/") -> Monitor:
    return Monitor(id=mid, owner_id=1, name=f"m{mid}", target=target, interval=interval, timeout=0.5)


async def run_for(scheduler: Scheduler, seconds: float) -> None:
    with anyio.move_on_after(seconds):
        await scheduler.run()


async def test_due_monitors_are_enqueued_in_batches_each_at_its_exact_grid_time(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    monitors = [monitor(mid) for mid in range(1, 301)]
    queue = RecordingQueue(redis, prefix=key_prefix)
    feed = MonitorFeed()
    feed.put(monitors)
    feed.ready.set()
    scheduler = Scheduler(redis=redis, queue=queue, feed=feed, configured_regions=["default"], prefix=key_prefix)
    started = time.monotonic()
    await run_for(scheduler, 3.0)
    elapsed = time.monotonic() - started

    jobs = queue.jobs()
    assert len(jobs) >= 600  # 300 monitors a second
    tick = enqueue_tick(EncodedMonitor.of(m) for m in monitors)
    assert tick == 0.25  # a quarter of their 1 s interval
    # Phases are spread, so one wake-up per due monitor would be ~300 a second; a tick batches them.
    assert len(queue.batches) <= elapsed / tick + 2
    due_by_monitor: dict[int, list[int]] = defaultdict(list)
    for enqueued_ms, encoded, due_ms in jobs:
        m = encoded.monitor
        grid = (
            phase_of(m.id, m.interval) + round((due_ms / 1000 - phase_of(m.id, m.interval)) / m.interval) * m.interval
        )
        assert abs(due_ms - grid * 1000) <= 1  # the job carries its grid point, not the wake-up time
        assert enqueued_ms >= due_ms  # never early
        due_by_monitor[m.id].append(due_ms)
    for dues in due_by_monitor.values():
        assert all(abs(later - earlier - 1000) <= 1 for earlier, later in itertools.pairwise(dues))  # no drift
    assert statistics.median(enqueued - due for enqueued, _, due in jobs) <= tick * 1000 + 50

    # Nothing acknowledged them: each monitor is in flight after its first job, and not enqueued again.
    assert await redis.xlen(queue.stream) == len(monitors)
    assert scheduler.skipped_in_flight == len(jobs) - len(monitors)


async def test_ordinary_intervals_get_fuller_batches_and_a_one_second_monitor_is_at_most_a_quarter_late(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    quiet = [monitor(mid, interval=60.0) for mid in range(1, 601)]  # 10 due a second
    queue = RecordingQueue(redis, prefix=key_prefix)
    feed = MonitorFeed()
    feed.put(quiet)
    feed.ready.set()
    scheduler = Scheduler(redis=redis, queue=queue, feed=feed, configured_regions=["default"], prefix=key_prefix)
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run)
        with anyio.fail_after(10):
            await queue.wait_for_batches(4)
            before = len(queue.batches)
            # Added just after a batch of the 0.5 s tick and first due 50-100 ms later: waiting out the old tick
            # from the wake-up the addition caused would make its first check ~0.45 s late.
            now = time.time()
            quick = next(
                m
                for m in (monitor(mid, interval=1.0) for mid in itertools.count(1000))
                if 0.05 <= next_due(m, now) - now <= 0.1
            )
            feed.put([quick])
            await queue.wait_for_jobs(quick.id, 4)
        tg.cancel_scope.cancel()
    times = [at for at, _ in queue.batches]
    quiet_gaps = [later - earlier for earlier, later in itertools.pairwise(times[:before])]
    assert min(quiet_gaps) >= ENQUEUE_TICK_S * 1000 - 20, quiet_gaps  # a tick apart: a few more jobs in each
    late = [enqueued - due for enqueued, encoded, due in queue.jobs() if encoded.monitor.id == quick.id]
    assert max(late) <= 250 + 60, late  # a quarter of its interval, whatever the others' tick was


async def test_the_first_check_after_start_is_not_held_back_by_the_tick(redis: aioredis.Redis, key_prefix: str) -> None:
    # A monitor due 100-150 ms from now: a tick from the start (250+ ms) would enqueue it 100+ ms late; without
    # one it goes when due, unless starting the scheduler (two Redis round trips) took 190 ms.
    now = time.time()
    soon = next(
        m for m in (monitor(mid, interval=30.0) for mid in itertools.count(1)) if 0.10 <= next_due(m, now) - now <= 0.15
    )
    queue = RecordingQueue(redis, prefix=key_prefix)
    feed = MonitorFeed()
    feed.put([soon])
    feed.ready.set()
    scheduler = Scheduler(redis=redis, queue=queue, feed=feed, configured_regions=["default"], prefix=key_prefix)
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run)
        with anyio.fail_after(5):
            await queue.wait_for_jobs(soon.id, 1)
        tg.cancel_scope.cancel()
    [(enqueued_ms, _, due_ms)] = queue.jobs()
    assert 0 <= enqueued_ms - due_ms < 90


async def test_edits_are_picked_up_as_they_happen_and_unchanged_monitors_keep_their_encoding(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    kept, edited, removed = monitor(1), monitor(2), monitor(3)
    queue = RecordingQueue(redis, prefix=key_prefix)
    feed = MonitorFeed()
    feed.put([kept, edited, removed])
    feed.ready.set()
    scheduler = Scheduler(redis=redis, queue=queue, feed=feed, configured_regions=["default"], prefix=key_prefix)
    changed_at_ms = 0

    async def edit() -> None:
        nonlocal changed_at_ms
        await queue.wait_for_jobs(edited.id, 2)  # scheduled a few times as it was
        changed_at_ms = int(time.time() * 1000)
        feed.put([monitor(2, target="http://127.0.0.1:9/moved")])
        feed.remove([removed.id])

    async with anyio.create_task_group() as tg:
        tg.start_soon(edit)
        await run_for(scheduler, 3.5)

    jobs = queue.jobs()
    settled_ms = changed_at_ms + 100  # a tick
    encodings = {id(encoded) for _, encoded, _ in jobs if encoded.monitor.id == kept.id}
    assert len(encodings) == 1  # serialised once, reused by every enqueue
    targets = [(now_ms, encoded.monitor.target) for now_ms, encoded, _ in jobs if encoded.monitor.id == edited.id]
    assert {target for now_ms, target in targets if now_ms < changed_at_ms} == {edited.target}
    assert {target for now_ms, target in targets if now_ms > settled_ms} == {"http://127.0.0.1:9/moved"}
    assert not [now_ms for now_ms, encoded, _ in jobs if encoded.monitor.id == removed.id and now_ms > settled_ms]
    assert any(now_ms > settled_ms for now_ms, encoded, _ in jobs if encoded.monitor.id == kept.id)


async def test_heartbeats_are_never_enqueued_and_other_kinds_with_their_secrets_are(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    pushed = Monitor.model_validate(
        {"id": 1, "owner_id": 1, "name": "backup", "kind": "heartbeat", "interval": 1, "timeout": 0.5}
    )
    checked = Monitor.model_validate(
        {
            "id": 2,
            "owner_id": 1,
            "name": "db",
            "kind": "postgres",
            "target": "127.0.0.1:9",
            "interval": 1,
            "timeout": 0.5,
            "postgres": {"password": "only-for-the-probe"},
        }
    )
    queue = RecordingQueue(redis, prefix=key_prefix)
    feed = MonitorFeed()
    feed.put([pushed, checked])
    feed.ready.set()
    scheduler = Scheduler(redis=redis, queue=queue, feed=feed, configured_regions=["default"], prefix=key_prefix)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(scheduler.run)
            await queue.wait_for_jobs(2, 2)
            tg.cancel_scope.cancel()

    assert {encoded.monitor.id for _, encoded, _ in queue.jobs()} == {2}
    [job] = await queue.read("worker", count=10, block_ms=100)
    assert job.monitor.options is not None
    assert job.monitor.options.password.get_secret_value() == "only-for-the-probe"  # type: ignore[attr-defined]
