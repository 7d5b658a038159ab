"""Probe workers of one region: read jobs, check, store the results, ack in bulk.

Up to ``concurrency`` checks run at once on the one shared aiohttp session,
each an asyncio task; jobs are read in batches, once ``READ_BATCH_SHARE`` of
the concurrency is free. Finished checks are completed in bulk: their
results appended to the region's result stream and their jobs acknowledged
in one Redis transaction (``ProbeQueue.complete``). Kafka is the
forwarder's business (``probe/forwarder.py``), so checking never waits for
the bus; a crash before completion leaves the job pending for another worker
to reclaim.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import anyio
import redis.asyncio as aioredis
import structlog

from uptimed import metrics
from uptimed.check import CheckResult
from uptimed.monitor import Monitor
from uptimed.probe.base import Resolve, policed_resolve, resolve_any
from uptimed.probe.kinds import run_probe
from uptimed.probe.queue import ProbeJob, ProbeQueue
from uptimed.rules.targets import TargetPolicy
from uptimed.supervisor import progress

log = structlog.get_logger()

READ_BATCH_SHARE = 0.1
"""Share of the concurrency that must be free before more jobs are read.

Reading as soon as one slot was free made a saturated worker read one job
per XREADGROUP round trip. Reading a tenth of the concurrency at a time is
one of the changes that raised the ceiling of one process from 2,800 to
4,500 checks/s (bench/README.md).
"""


COMPLETE_RETRY_S = (0.2, 5.0)
"""Backoff of storing results while Redis is away (first, most)."""

STEADY_HOLD_S = 2.0
"""How long a steady result may wait to be stored with others: up, fast, and up before.

Such a result changes nothing anyone is told, so it need not travel alone: at
1,000 monitors / 60 s nearly every check used to be a batch of its own at every
stage (its Redis transaction, the forwarder's round, the evaluator's batch and
transaction, a Kafka commit). Any other result (down, slow, or the first up
after one of those) is stored at once, with whatever waits, so an alert is
never later for it. At most a tenth of the monitor's interval, so a result is
stored well before its monitor's next check is due (``ProbeQueue.enqueue``
skips a monitor whose previous check is still unfinished). 2 s rather than
0.5 s: those stages then run every 2 s at that load instead of twice a second,
and the daemon's CPU per 1,000 checks fell by a quarter (bench/README.md);
5 s saved nothing more in the daemon.
"""


class ProbeWorker:
    """Runs the checks of one region in this process."""

    def __init__(
        self,
        *,
        queue: ProbeQueue,
        session: aiohttp.ClientSession,
        consumer: str,
        concurrency: int,
        reclaim_idle_s: float = 30.0,
        policed: tuple[aiohttp.ClientSession, TargetPolicy] | None = None,
    ) -> None:
        self.queue = queue
        self.region = queue.region
        self.session = session
        """For monitors declared in the config file (and every monitor when ``policed`` is None)."""
        self.policed = policed
        """Users' monitors: a session made with the target policy (``make_session(policy=...)``) and that policy."""
        self._users: tuple[aiohttp.ClientSession, Resolve] | None = (
            (policed[0], policed_resolve(policed[1])) if policed is not None else None
        )
        """Users' monitors: the policed session, and a resolve that keeps only the addresses the policy allows."""
        self.consumer = consumer
        self.concurrency = concurrency
        self.reclaim_idle_ms = int(reclaim_idle_s * 1000)
        self.running = 0
        self.checks_done = 0
        self.last_check_ms: int | None = None
        self._checks: asyncio.TaskGroup  # the checks in flight, owned by run()
        self._slot_freed = asyncio.Event()
        self._completed = asyncio.Event()
        self._completing = False
        self.drained = asyncio.Event()
        """Set once a graceful stop has stored the last results (the forwarder then sends them on)."""
        self.draining = False
        self._done: list[tuple[ProbeJob, bytes]] = []
        self._result_ready = asyncio.Event()
        """Set when the results in ``_done`` are to be stored now."""
        self._hold: asyncio.TimerHandle | None = None
        """Sets ``_result_ready`` when the earliest held steady result must be stored."""
        self._steady: dict[int, bool] = {}
        """Per monitor, whether its last result here was steady (see :data:`STEADY_HOLD_S`)."""

    async def run(self) -> None:
        await self.queue.ensure_group()
        batch = max(1, int(self.concurrency * READ_BATCH_SHARE))
        # Each check is a plain asyncio task: anyio's start_soon costs ~50 us a task, create_task ~12 us.
        async with anyio.create_task_group() as tg, asyncio.TaskGroup() as self._checks:
            tg.start_soon(self._complete)
            tg.start_soon(self._reclaim)
            while True:
                while self.concurrency - self.running < batch and not self.draining:
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
                if self.draining:
                    break
                jobs = await self.queue.read(
                    self.consumer, count=min(self.concurrency - self.running, 1000), block_ms=1000
                )
                progress()
                if self.draining:  # read while draining: left pending for another worker to reclaim
                    break
                self._start(jobs)
            await anyio.sleep_forever()

    async def drain(self) -> None:
        """Take no new jobs; finish the checks in flight and store their results."""
        self.draining = True
        while self.running:
            self._slot_freed.clear()
            await self._slot_freed.wait()
        while self._done or self._completing:
            self._completed.clear()
            self._result_ready.set()
            await self._completed.wait()
        self.drained.set()

    def _start(self, jobs: list[ProbeJob]) -> None:
        for job in jobs:
            self.running += 1
            self._checks.create_task(self._check(job))

    async def _check(self, job: ProbeJob) -> None:
        try:
            session, resolve = (
                (self.session, resolve_any) if self._users is None or job.monitor.declared_in_file else self._users
            )
            result = await run_probe(
                job.monitor, region=self.region, session=session, resolve=resolve, scheduled_at_ms=job.due_ms
            )
            metrics.observe_check(result)
            self._done.append((job, result.model_dump_json().encode()))
            self._store_soon(job.monitor, result)
            self.checks_done += 1
            self.last_check_ms = result.checked_at_ms
            log.debug(
                "probe.checked",
                monitor_id=result.monitor_id,
                region=self.region,
                status=result.status.value,
                ms=result.response_time_ms,
                lag_ms=result.checked_at_ms - job.due_ms,
            )
        finally:
            self.running -= 1
            self._slot_freed.set()

    def _store_soon(self, monitor: Monitor, result: CheckResult) -> None:
        """Have ``result`` stored at once, or within its hold when it is steady (:data:`STEADY_HOLD_S`)."""
        fast = monitor.slow_threshold_ms is None or (result.response_time_ms or 0.0) < monitor.slow_threshold_ms
        steady = result.ok and fast
        was_steady, self._steady[monitor.id] = self._steady.get(monitor.id, False), steady
        if not (steady and was_steady):
            self._result_ready.set()
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + min(STEADY_HOLD_S, monitor.interval / 10)
        if self._hold is None or at < self._hold.when():
            if self._hold is not None:
                self._hold.cancel()
            self._hold = loop.call_at(at, self._result_ready.set)

    async def _complete(self) -> None:
        """Store finished checks' results and ack their jobs, in bulk; a failed write is tried again."""
        delay = COMPLETE_RETRY_S[0]
        while True:
            await self._result_ready.wait()
            self._result_ready.clear()
            if self._hold is not None:
                self._hold.cancel()
                self._hold = None
            batch, self._done = self._done, []
            self._completing = True
            try:
                await self.queue.complete(batch)
                delay = COMPLETE_RETRY_S[0]
            except (aioredis.RedisError, OSError) as exc:
                # Redis is away: keep the results (their jobs stay pending) and try again.
                self._done[:0] = batch
                log.warning("probe.complete_failed", region=self.region, results=len(batch), error=type(exc).__name__)
                await anyio.sleep(delay)
                delay = min(delay * 2, COMPLETE_RETRY_S[1])
                self._result_ready.set()
            finally:
                self._completing = False
                self._completed.set()

    async def _reclaim(self) -> None:
        """Take over the jobs of a worker that died holding them, as many as there are free slots."""
        while True:
            await anyio.sleep(self.reclaim_idle_ms / 4000)
            free = self.concurrency - self.running
            if free <= 0 or self.draining:
                continue
            jobs = await self.queue.reclaim(self.consumer, min_idle_ms=self.reclaim_idle_ms, count=min(free, 500))
            now_ms = time.time() * 1000
            stale = [j for j in jobs if now_ms - j.due_ms > j.monitor.interval * 1000]
            fresh = [j for j in jobs if j not in stale]
            # A job older than its interval is superseded by the next scheduled one.
            await self.queue.ack(stale)
            if jobs:
                log.info("probe.reclaimed", region=self.region, jobs=len(fresh), dropped=len(stale))
            if not self.draining:  # claimed while draining: left pending for another worker to reclaim
                self._start(fresh)
