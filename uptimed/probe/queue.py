"""The per-region work queue: a Redis stream, one consumer group of probe workers.

The scheduler enqueues a job (monitor + due time) with :meth:`ProbeQueue.enqueue`,
which skips a monitor whose previous check in this region is still in flight;
workers :meth:`read` jobs and :meth:`complete` them in bulk: in one Redis
transaction each result is appended to the region's result stream (where the
forwarder picks it up for Kafka, see ``probe/forwarder.py``), the job is
acknowledged and its in-flight mark cleared. So a result is never lost and
never stored twice, and checking never waits for the bus. Jobs of a dead
worker are taken over with :meth:`reclaim` (XAUTOCLAIM).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from uptimed.monitor import Monitor
from uptimed.store.monitor_feed import EncodedMonitor, MonitorFeed

GROUP = "probers"


def results_stream(prefix: str, region: str) -> str:
    """The Redis stream where a region's check results wait for the forwarder."""
    return f"{prefix}results:{region}"


# redis-py types a stream reply for every protocol and decoding at once; uptimed's
# clients speak RESP2 and do not decode (daemon.connect_redis), so a reply has
# one of the shapes below, all bytes.

StreamEntry = tuple[bytes, dict[bytes, bytes]]
"""A new stream entry as read: its id and its fields."""
PendingEntry = tuple[bytes, dict[bytes, bytes] | None]
"""An entry claimed from a group's pending list: no fields (None) once it was trimmed away."""


def read_entries(reply: object) -> list[StreamEntry]:
    """The entries of an XREAD or XREADGROUP reply on one stream (``[[stream, entries]]``), [] when none came."""
    streams = cast("list[tuple[bytes, list[StreamEntry]]]", reply)
    return streams[0][1] if streams else []


def claimed_entries(reply: object) -> list[PendingEntry]:
    """The entries of an XAUTOCLAIM reply: ``[next start id, entries, ids of entries gone]``."""
    return cast("list[list[PendingEntry]]", reply)[1]


# KEYS: stream, in-flight hash. ARGV: now_ms, maxlen, then (monitor id, deadline ms, due ms, version, json)...
# A monitor whose in-flight deadline has not passed is skipped; the rest are
# marked in flight and appended, atomically, in one round trip.
_ENQUEUE = """
local now = tonumber(ARGV[1])
local added = 0
for i = 3, #ARGV, 5 do
  local id = ARGV[i]
  local busy = redis.call('HGET', KEYS[2], id)
  if not busy or tonumber(busy) <= now then
    redis.call('HSET', KEYS[2], id, ARGV[i + 1])
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', id, 'd', ARGV[i + 2], 'v', ARGV[i + 3], 'j', ARGV[i + 4])
    added = added + 1
  end
end
return added
"""


@dataclass(frozen=True)
class ProbeJob:
    """One check to run: which monitor, due when."""

    entry_id: bytes
    monitor: Monitor
    due_ms: int


class ProbeQueue:
    """The work queue of one region."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str,
        region: str,
        feed: MonitorFeed | None = None,
        maxlen: int = 100_000,
    ) -> None:
        self.redis = redis
        self.region = region
        self.stream = f"{prefix}probe:{region}"
        self.inflight = f"{prefix}probe:{region}:inflight"
        self.results = results_stream(prefix, region)
        self.maxlen = maxlen
        self._enqueue = redis.register_script(_ENQUEUE)
        self.feed = feed
        """This process's monitors: a job whose version matches is resolved to the same object, not decoded."""
        self._decoded: dict[tuple[int, int], Monitor] = {}

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, jobs: list[tuple[EncodedMonitor, int, int]], *, now_ms: int) -> int:
        """Append ``(monitor, due_ms, deadline_ms)`` jobs not already in flight; returns how many."""
        if not jobs:
            return 0
        args: list[int | str] = [now_ms, self.maxlen]
        for encoded, due_ms, deadline_ms in jobs:
            args += [encoded.monitor.id, deadline_ms, due_ms, encoded.version, encoded.json]
        return int(await self._enqueue(keys=[self.stream, self.inflight], args=args))

    async def read(self, consumer: str, *, count: int, block_ms: int) -> list[ProbeJob]:
        reply = await self.redis.xreadgroup(GROUP, consumer, {self.stream: ">"}, count=count, block=block_ms)
        return self._jobs(read_entries(reply))

    async def reclaim(self, consumer: str, *, min_idle_ms: int, count: int = 500) -> list[ProbeJob]:
        """Take over jobs another worker read but did not ack within ``min_idle_ms``."""
        reply = await self.redis.xautoclaim(self.stream, GROUP, consumer, min_idle_ms, "0-0", count=count)
        return self._jobs(claimed_entries(reply))

    async def ack(self, jobs: list[ProbeJob]) -> None:
        """Acknowledge jobs without a result (superseded) and clear their in-flight marks, in one round trip."""
        if not jobs:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(self.stream, GROUP, *(job.entry_id for job in jobs))
            pipe.xdel(self.stream, *(job.entry_id for job in jobs))
            pipe.hdel(self.inflight, *(job.monitor.id for job in jobs))
            await pipe.execute()

    async def complete(self, done: list[tuple[ProbeJob, bytes]]) -> None:
        """Store each job's encoded check result for the forwarder and acknowledge the job, atomically."""
        if not done:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for job, result in done:
                pipe.xadd(self.results, {"k": str(job.monitor.id), "v": result})
            pipe.xack(self.stream, GROUP, *(job.entry_id for job, _ in done))
            pipe.xdel(self.stream, *(job.entry_id for job, _ in done))
            pipe.hdel(self.inflight, *(job.monitor.id for job, _ in done))
            await pipe.execute()

    def _jobs(self, entries: Sequence[PendingEntry]) -> list[ProbeJob]:
        jobs = []
        for entry_id, fields in entries:
            if not fields:  # trimmed away while pending
                continue
            key = (int(fields[b"m"]), int(fields[b"v"]))
            known = self.feed.entries.get(key[0]) if self.feed is not None else None
            monitor = known.monitor if known is not None and known.version == key[1] else self._decoded.get(key)
            if monitor is None:  # edited since it was enqueued (or no feed): the job's own copy
                if len(self._decoded) > 10_000:
                    self._decoded.clear()
                monitor = self._decoded[key] = Monitor.model_validate_json(fields[b"j"])
            jobs.append(ProbeJob(entry_id, monitor, int(fields[b"d"])))
        return jobs
