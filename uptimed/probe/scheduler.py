"""Enqueues each due monitor of one region, from one process at a time.

Leadership is a Redis key with a TTL the leader renews; when the leader dies
another process takes over within about the TTL. Each monitor's checks fall
on a fixed grid, ``phase + k * interval``, with the phase spread by the
monitor's id: 10,000 monitors at 60 s arrive evenly, a slow check never
shifts the next one (no drift), and a new leader keeps the same grid. Due
monitors are enqueued in batches, at most every ``ENQUEUE_TICK_S``; each job
still carries its exact grid time.
"""

from __future__ import annotations

import heapq
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

import anyio
import redis.asyncio as aioredis
import structlog

from uptimed.monitor import Monitor
from uptimed.probe.leadership import LOCK_TTL_S, Leadership
from uptimed.probe.queue import EncodedMonitor, ProbeQueue
from uptimed.supervisor import progress

log = structlog.get_logger()

INFLIGHT_GRACE_S = 5.0
"""How long past its timeout a check still counts as in flight (publishing, a slow worker)."""

ENQUEUE_TICK_S = 0.05
"""The shortest sleep of the enqueue loop.

Phases are spread evenly, so without it the loop woke, and made a Redis round
trip, for nearly every due monitor: 167 times a second at 10,000 monitors /
60 s, 5,000 at the throughput target, and every batch costs the worker a read,
an ack and a Kafka batch too. A tick adds at most its length to the schedule
lag, against TARGETS.md's p99 < 1 s; the due time of each job stays its grid
point, only the wake-up is batched. At 10,000 monitors / 60 s (bench/README.md)
50 ms puts the lag p50 at 30 ms and halves the CPU per check of a 10 ms tick.
"""


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
        load_monitors: Callable[[], Awaitable[list[Monitor]]],
        configured_regions: list[str],
        prefix: str,
        refresh_s: float = 5.0,
        lock_ttl_s: float = LOCK_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.region = queue.region
        self.load_monitors = load_monitors
        self.configured_regions = configured_regions
        self.refresh_s = refresh_s
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

    async def _monitors(self, previous: dict[int, EncodedMonitor]) -> dict[int, EncodedMonitor]:
        """This region's enabled monitors, serialised.

        ``load_monitors`` returns the same object for an unchanged monitor
        (see ``store.monitors.list_enabled``), whose ``previous`` encoding is
        kept: serialising 10,000 monitors at every refresh cost ~60 ms.
        """
        monitors: dict[int, EncodedMonitor] = {}
        for m in await self.load_monitors():
            if m.enabled and self.region in m.effective_regions(self.configured_regions):
                before = previous.get(m.id)
                monitors[m.id] = before if before is not None and before.monitor is m else EncodedMonitor.of(m)
        return monitors

    async def _schedule(self) -> None:
        monitors = await self._monitors({})
        now = self.clock()
        due: dict[int, float] = {mid: next_due(e.monitor, now) for mid, e in monitors.items()}
        heap = [(t, mid) for mid, t in due.items()]
        heapq.heapify(heap)
        next_refresh = now + self.refresh_s
        log.info("scheduler.started", region=self.region, monitors=len(monitors))
        while True:
            progress()
            now = self.clock()
            if now >= next_refresh:
                monitors, heap, due = await self._refresh(monitors, due, now)
                next_refresh = now + self.refresh_s
            batch: list[tuple[EncodedMonitor, int, int]] = []
            while heap and heap[0][0] <= now:
                at, mid = heapq.heappop(heap)
                encoded = monitors.get(mid)
                if encoded is None or due.get(mid) != at:
                    continue  # removed or rescheduled by a refresh
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
            wake = min(heap[0][0] if heap else next_refresh, next_refresh)
            await anyio.sleep(max(ENQUEUE_TICK_S, wake - self.clock()))

    async def _refresh(
        self, old: dict[int, EncodedMonitor], due: dict[int, float], now: float
    ) -> tuple[dict[int, EncodedMonitor], list[tuple[float, int]], dict[int, float]]:
        monitors = await self._monitors(old)
        new_due: dict[int, float] = {}
        for mid, encoded in monitors.items():
            before = old.get(mid)
            if before is not None and before.monitor.interval == encoded.monitor.interval and mid in due:
                new_due[mid] = due[mid]
            else:
                new_due[mid] = next_due(encoded.monitor, now)
        heap = [(t, mid) for mid, t in new_due.items()]
        heapq.heapify(heap)
        if len(monitors) != len(old):
            log.info("scheduler.monitors", region=self.region, monitors=len(monitors))
        return monitors, heap, new_due
