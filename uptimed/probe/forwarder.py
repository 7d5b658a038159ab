"""Moves a region's check results from their Redis stream to Kafka, in order.

Probe workers never wait for the bus: they append each result to the
region's result stream (``uptimed:results:<region>``) in the same Redis
transaction that acknowledges the job (``ProbeQueue.complete``). One process
at a time per region (a :class:`~uptimed.probe.leadership.Leadership`) runs
the forwarder, which reads the stream from its cursor in batches, publishes
them to ``checks`` and waits until Kafka has them all; only then does it
move the cursor and trim what was forwarded. So results survive a broker
outage and a kill -9 of the daemon alike (Redis keeps them), and reach the
evaluator in the order they were checked; a crash between publishing and
moving the cursor publishes a batch again, which the evaluator ignores
(results it has seen are stale to it).

While Kafka is away the stream grows; past ``[probe] buffer_max`` results the
oldest are dropped, counted and logged (``results.dropped``): the newest
results are the ones that still tell what a monitor is doing now.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import redis.asyncio as aioredis
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from uptimed import metrics
from uptimed.probe.leadership import Leadership
from uptimed.probe.queue import StreamEntry, read_entries, results_stream
from uptimed.supervisor import progress

log = structlog.get_logger()

BATCH = 2000
"""Results published per round: one Redis read, one wait for Kafka's acknowledgements."""
PUBLISH_TIMEOUT_S = 10.0
"""One round may take this long before the bus counts as away."""
RETRY_S = (0.5, 5.0)
"""Backoff between rounds while the bus is away (first, most)."""
DROP_LOG_EVERY_S = 30.0
"""While results keep being dropped, one summary line per this long."""


def _after(entry_id: bytes) -> str:
    """The stream id just after ``entry_id``: trimming below it removes the entry itself."""
    ms, _, seq = entry_id.decode().partition("-")
    return f"{ms}-{int(seq or 0) + 1}"


class Forwarder:
    """The forwarder of one region's results, in the process that leads it."""

    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        producer: AIOKafkaProducer,
        topic: str,
        prefix: str,
        region: str,
        buffer_max: int,
        token: str,
        probes_drained: asyncio.Event | None = None,
    ) -> None:
        self.redis = redis
        self.producer = producer
        self.topic = topic
        self.region = region
        self.buffer_max = buffer_max
        self.stream = results_stream(prefix, region)
        self.cursor_key = f"{self.stream}:forwarded"
        self.leadership = Leadership(redis, key=f"{self.stream}:leader", token=token)
        self.forwarded = 0
        self.dropped = 0
        self.probes_drained = probes_drained
        self._caught_up = asyncio.Event()
        self._dropped_unlogged = 0
        self._drop_logged_at = float("-inf")

    async def run(self) -> None:
        await self.leadership.run(self._forward, role="forwarder", region=self.region)

    async def drain(self) -> None:
        """On a graceful stop: once this process's probes have stored their last results, forward them.

        Only the leading process forwards; elsewhere the leader (or the next
        start) takes them. Bounded by the supervisor's drain deadline, like
        every drain: results left over wait in Redis, never lost.
        """
        if self.probes_drained is not None:
            await self.probes_drained.wait()
        if not self.leadership.is_leader:
            return
        self._caught_up.clear()
        await self._caught_up.wait()

    async def _forward(self) -> None:
        cursor: bytes | str = await self.redis.get(self.cursor_key) or "0-0"
        failures = 0
        away_since = 0.0
        while True:
            entries = read_entries(await self.redis.xread({self.stream: cursor}, count=BATCH, block=1000))
            progress()
            if not entries:
                # Caught up: nothing after the cursor, and what is before it was trimmed with the cursor's move.
                self._caught_up.set()
                metrics.RESULTS_BUFFERED.labels(self.region).set(0)
                continue
            try:
                await self._publish(entries)
            except (KafkaError, TimeoutError) as exc:
                failures += 1
                if failures == 1:
                    away_since = time.monotonic()
                    log.warning("forwarder.bus_unavailable", region=self.region, error=type(exc).__name__ or str(exc))
                await self._measure()
                await anyio.sleep(min(RETRY_S[0] * 2 ** (failures - 1), RETRY_S[1]))
                continue
            if failures:
                backlog = await self.redis.xlen(self.stream)
                log.info(
                    "forwarder.bus_back",
                    region=self.region,
                    away_s=round(time.monotonic() - away_since, 1),
                    backlog=backlog,
                )
                failures = 0
            cursor = entries[-1][0]
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self.cursor_key, cursor)
                pipe.xtrim(self.stream, minid=_after(cursor))
                pipe.xlen(self.stream)
                *_, left = await pipe.execute()
            metrics.RESULTS_BUFFERED.labels(self.region).set(left)
            self.forwarded += len(entries)
            if not left:
                self._caught_up.set()

    async def _publish(self, entries: list[StreamEntry]) -> None:
        with anyio.fail_after(PUBLISH_TIMEOUT_S):
            futures = [await self.producer.send(self.topic, fields[b"v"], key=fields[b"k"]) for _, fields in entries]
            await asyncio.gather(*futures)

    async def _measure(self) -> None:
        """Report the backlog; beyond ``buffer_max`` drop the oldest results, counted and logged."""
        backlog = await self.redis.xlen(self.stream)
        metrics.RESULTS_BUFFERED.labels(self.region).set(backlog)
        if backlog <= self.buffer_max:
            return
        dropped = await self.redis.xtrim(self.stream, maxlen=self.buffer_max, approximate=False)
        if not dropped:
            return
        metrics.RESULTS_BUFFERED.labels(self.region).set(backlog - dropped)
        self.dropped += dropped
        self._dropped_unlogged += dropped
        metrics.RESULTS_DROPPED.labels(self.region).inc(dropped)
        if time.monotonic() - self._drop_logged_at >= DROP_LOG_EVERY_S:
            log.warning(
                "results.dropped",
                region=self.region,
                dropped=self._dropped_unlogged,
                total=self.dropped,
                kept=self.buffer_max,
                reason="buffer_max reached while the message bus is unavailable",
            )
            self._dropped_unlogged = 0
            self._drop_logged_at = time.monotonic()
