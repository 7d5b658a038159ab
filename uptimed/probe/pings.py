"""Where a heartbeat's pings come in: each one a check result in the region's result buffer, like a probe's.

``/ping/<token>`` (GET, HEAD or POST) says the job ran and succeeded;
``/ping/<token>/fail`` that it failed, ``/ping/<token>/<exit status>`` either
(0 is success); ``/ping/<token>/start`` that it started: the success or
failure after it carries the run's duration as its response time. The first
bytes of a POST body become the result's message. A result goes into this
process's result stream (:func:`~uptimed.probe.queue.results_stream`), where
the forwarder sends it on to ``checks``: a ping is taken while Kafka is away.

Only the holder of a token learns anything: an unknown token, a token of a
monitor that is no heartbeat (any more) and a malformed one all answer the
same "not found". Each token takes at most ``limit`` pings a minute, counted
in Redis across processes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum

import asyncpg
import redis.asyncio as aioredis
import structlog

from uptimed.check import CheckResult, ErrorClass, now_ms
from uptimed.monitor import PUSH_REGION
from uptimed.probe.base import CheckContext
from uptimed.probe.queue import results_stream
from uptimed.store import monitors

log = structlog.get_logger()

PINGS_PER_MINUTE = 60
"""What one token may send a minute (a job that pings start and end every minute needs 2)."""
MESSAGE_BYTES = 1000
"""How much of a POST body is kept as the ping's message."""
START_TTL_S = 7 * 86400
"""A /start is forgotten after a week without a success or failure after it."""

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_EXIT_STATUS = re.compile(r"\d{1,3}")


class Signal(StrEnum):
    SUCCESS = "success"
    FAIL = "fail"
    START = "start"


def signal_of(suffix: str | None) -> tuple[Signal, int | None] | None:
    """``None`` -> success; ``"fail"``, ``"start"``, ``"0"``..``"255"`` (an exit status); anything else None."""
    if suffix is None or suffix == "":
        return Signal.SUCCESS, None
    if suffix in (Signal.FAIL, Signal.START):
        return Signal(suffix), None
    if _EXIT_STATUS.fullmatch(suffix) and int(suffix) <= 255:
        status = int(suffix)
        return (Signal.SUCCESS if status == 0 else Signal.FAIL), status
    return None


class Outcome(StrEnum):
    TAKEN = "taken"
    UNKNOWN = "unknown"
    LIMITED = "limited"


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    retry_after_s: int | None = None
    result: CheckResult | None = None


class PingReceiver:
    """Takes pings in this process: finds the monitor by token, limits, times runs, buffers the result."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        prefix: str,
        region: str,
        limit: int = PINGS_PER_MINUTE,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.prefix = prefix
        self.stream = results_stream(prefix, region)
        """A stream this process's forwarder sends on; the results themselves are of :data:`PUSH_REGION`."""
        self.limit = limit

    async def receive(self, token: str, suffix: str | None, body: bytes = b"") -> Received:
        """One ping; never says more than "unknown" about a token that is not a heartbeat's."""
        signal = signal_of(suffix)
        if signal is None or not _TOKEN.fullmatch(token):
            return Received(Outcome.UNKNOWN)
        monitor = await monitors.get_by_ping_token(self.pool, token)
        if monitor is None or monitor.scheduled:
            return Received(Outcome.UNKNOWN)
        at_ms = now_ms()
        window = at_ms // 60_000
        rate_key = f"{self.prefix}ping:rate:{monitor.id}:{window}"
        start_key = f"{self.prefix}ping:start:{monitor.id}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(rate_key)
            pipe.expire(rate_key, 120)
            count, _ = await pipe.execute()
        if int(count) > self.limit:
            log.info("ping.limited", monitor_id=monitor.id)
            return Received(Outcome.LIMITED, retry_after_s=60 - int(time.time()) % 60)
        kind, exit_status = signal
        if kind is Signal.START:
            await self.redis.set(start_key, at_ms, ex=START_TTL_S)
            log.debug("ping.start", monitor_id=monitor.id)
            return Received(Outcome.TAKEN)
        started = await self.redis.getdel(start_key)
        duration_ms = float(at_ms - int(started)) if started is not None and int(started) <= at_ms else None
        message = body[:MESSAGE_BYTES].decode("utf-8", errors="replace").strip() or None
        # A ping is a check that ran now, of the one region pushed kinds have.
        check = CheckContext(monitor.id, PUSH_REGION, checked_at_ms=at_ms)
        if kind is Signal.SUCCESS:
            result = check.up(response_time_ms=duration_ms, message=message)
        else:
            error = "the job reported a failure" if exit_status is None else f"the job exited with status {exit_status}"
            result = check.down(ErrorClass.REPORTED, error, response_time_ms=duration_ms, message=message)
        await self.redis.xadd(self.stream, {"k": str(monitor.id), "v": result.model_dump_json()})
        log.debug("ping.taken", monitor_id=monitor.id, status=result.status.value)
        return Received(Outcome.TAKEN, result=result)
