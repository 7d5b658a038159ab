"""Enqueues each due monitor of one region, from one process at a time.

Leadership is a Redis key with a TTL the leader renews; when the leader dies
another process takes over within about the TTL. Each monitor's checks fall
on a fixed grid, ``phase + k * interval``, with the phase spread by the
monitor's id: 10,000 monitors at 60 s arrive evenly, a slow check never
shifts the next one (no drift), and a new leader keeps the same grid. Due
monitors are enqueued in batches, at most every ``ENQUEUE_TICK_S`` (or a
quarter of the shortest interval, when that is less); each job still carries
its exact grid time. The monitors come from this process's
:class:`~uptimed.store.monitor_feed.MonitorFeed`: a created, edited, paused
or deleted monitor is rescheduled within a moment of the change, and nothing
is re-read while nothing changes.
"""

from __future__ import annotations

import heapq
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
import structlog

from uptimed.monitor import Monitor
from uptimed.probe.leadership import LOCK_TTL_S, Leadership
from uptimed.probe.queue import ProbeQueue
from uptimed.store.monitor_feed import EncodedMonitor, MonitorFeed, Subscription
from uptimed.supervisor import progress

log = structlog.get_logger()

INFLIGHT_GRACE_S = 5.0
"""How long past its timeout a check still counts as in flight (publishing, a slow worker)."""

ENQUEUE_TICK_S = 0.5
"""The shortest time between two batches, unless a monitor's interval asks for less (:func:`enqueue_tick`).

Phases are spread evenly, so without it the loop woke, and made a Redis round
trip, for nearly every due monitor: 167 times a second at 10,000 monitors /
60 s, and every batch costs the worker a read, an ack and a Kafka batch too. A
tick adds at most its length to the schedule lag, against TARGETS.md's p99 <
1 s; the due time of each job stays its grid point, only the wake-up is
batched. 10 ms -> 50 ms halved the CPU per check at 10,000 monitors / 60 s;
50 ms -> 250 ms put 4 jobs instead of one in a batch at 1,000 monitors / 60 s,
where a batch of one was the rule, and 250 -> 500 ms took another ~10% off
the daemon's CPU per check there (bench/README.md). Not before the first
batch: the first check after start (or after taking over the lead) goes when
it is due, not up to a tick later. The tick counts from the last batch, so a
change that wakes the loop neither adds a batch between ticks nor pushes the
next one later, and a shorter tick (a new one-second monitor) applies at once.
"""


def enqueue_tick(monitors: Iterable[EncodedMonitor]) -> float:
    """The tick for these monitors: :data:`ENQUEUE_TICK_S`, or a quarter of the shortest interval among them.

    A monitor checked every second is then at most a quarter of its interval
    late; at ordinary intervals the longer tick makes fewer, fuller batches.
    """
    shortest = min((entry.monitor.interval for entry in monitors), default=4 * ENQUEUE_TICK_S)
    return min(ENQUEUE_TICK_S, shortest / 4)


def phase_of(monitor_id: int, interval: float) -> float:
    """Where in its interval a monitor's checks fall: spread evenly by Fibonacci hashing."""
    return ((monitor_id * 0x9E3779B1) % 2**32) / 2**32 * interval


def next_due(monitor: Monitor, now: float) -> float:
    """The first grid point of ``monitor`` at or after ``now`` (seconds since epoch)."""
    phase = phase_of(monitor.id, monitor.interval)
    return phase + math.ceil((now - phase) / monitor.interval) * monitor.interval


def process_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Scheduler:
    """The scheduler of one region."""

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        queue: ProbeQueue,
        feed: MonitorFeed,
        configured_regions: list[str],
        prefix: str,
        lock_ttl_s: float = LOCK_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.region = queue.region
        self.feed = feed
        self.configured_regions = configured_regions
        self.leadership = Leadership(
            redis, key=f"{prefix}scheduler:{self.region}:leader", token=process_identity(), ttl_s=lock_ttl_s
        )
        self.clock = clock
        self.enqueued = 0
        self.skipped_in_flight = 0

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader

    async def run(self) -> None:
        """Compete for leadership forever; schedule while leader."""
        await self.queue.ensure_group()
        await self.leadership.run(self._schedule, role="scheduler", region=self.region)

    def _mine(self, entry: EncodedMonitor | None) -> bool:
        # A pushed kind (heartbeat) is never enqueued: its pings are its results.
        return (
            entry is not None
            and entry.monitor.enabled
            and entry.monitor.scheduled
            and self.region in entry.monitor.effective_regions(self.configured_regions)
        )

    async def _schedule(self) -> None:
        await self.feed.ready.wait()
        subscription = self.feed.subscribe()
        try:
            await self._enqueue_forever(subscription)
        finally:
            self.feed.unsubscribe(subscription)

    async def _enqueue_forever(self, subscription: Subscription) -> None:
        now = self.clock()
        monitors = {mid: e for mid, e in self.feed.entries.items() if self._mine(e)}
        due: dict[int, float] = {mid: next_due(e.monitor, now) for mid, e in monitors.items()}
        heap = [(t, mid) for mid, t in due.items()]
        heapq.heapify(heap)
        log.info("scheduler.started", region=self.region, monitors=len(monitors))
        tick_s = enqueue_tick(monitors.values())
        last_batch = -math.inf  # the first batch is not held back by a tick
        while True:
            progress()
            now = self.clock()
            if changed := subscription.take():
                self._follow(changed, monitors, due, heap, now)
                tick_s = enqueue_tick(monitors.values())
            batch: list[tuple[EncodedMonitor, int, int]] = []
            while heap and heap[0][0] <= now and now >= last_batch + tick_s:
                at, mid = heapq.heappop(heap)
                encoded = monitors.get(mid)
                if encoded is None or due.get(mid) != at:
                    continue  # removed or rescheduled since
                monitor = encoded.monitor
                deadline = at + monitor.timeout + INFLIGHT_GRACE_S
                batch.append((encoded, int(at * 1000), int(deadline * 1000)))
                following = at + monitor.interval
                if following <= now:  # fell behind (a pause): resume on the grid, no burst of catch-up checks
                    following = next_due(monitor, now + 1e-6)
                due[mid] = following
                heapq.heappush(heap, (following, mid))
            if batch:
                added = await self.queue.enqueue(batch, now_ms=int(now * 1000))
                self.enqueued += added
                self.skipped_in_flight += len(batch) - added
                last_batch = self.clock()
            # The tick counts from the last batch, not from this wake-up: a change that woke the loop (or made the
            # tick shorter, a one-second monitor among minute ones) must not hold the next batch back further.
            wake = heap[0][0] if heap else now + 1.0
            clock = self.clock()
            await subscription.wait(max(last_batch + tick_s - clock, min(wake - clock, 1.0), 0.0))

    def _follow(
        self,
        changed: set[int],
        monitors: dict[int, EncodedMonitor],
        due: dict[int, float],
        heap: list[tuple[float, int]],
        now: float,
    ) -> None:
        """Reschedule the monitors that changed: new ones on their grid, edited ones keep it unless their interval moved."""
        before = len(monitors)
        for mid in changed:
            entry = self.feed.entries.get(mid)
            if not self._mine(entry):
                monitors.pop(mid, None)
                due.pop(mid, None)  # its heap entry is skipped when it comes up
                continue
            assert entry is not None
            previous = monitors.get(mid)
            monitors[mid] = entry
            if previous is None or previous.monitor.interval != entry.monitor.interval or mid not in due:
                due[mid] = next_due(entry.monitor, now)
                heapq.heappush(heap, (due[mid], mid))
        if len(monitors) != before:
            log.info("scheduler.monitors", region=self.region, monitors=len(monitors))
