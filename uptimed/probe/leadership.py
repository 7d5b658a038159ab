"""One process at a time per region: a Redis key with a TTL that the holder renews.

The scheduler of a region and the forwarder of its results each run in one
process at a time. The holder renews the key every third of its TTL; when it
dies, another process takes over within about the TTL, and a holder that
stops cleanly releases the key so the next one takes over at once.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import redis.asyncio as aioredis
import structlog

from uptimed.supervisor import progress

log = structlog.get_logger()

LOCK_TTL_S = 5.0
"""How long a dead holder keeps the lead: with the poll every third of it, a takeover takes at most ~6.7 s."""

# KEYS: lock. ARGV: token, ttl ms. Renew only a lock we still hold.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leadership:
    """Runs ``work`` while this process holds ``key``; competes for it again when it is lost."""

    def __init__(self, redis: aioredis.Redis, *, key: str, token: str, ttl_s: float = LOCK_TTL_S) -> None:
        self.redis = redis
        self.key = key
        self.token = token
        self.ttl_ms = int(ttl_s * 1000)
        self.is_leader = False
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def run(self, work: Callable[[], Coroutine[Any, Any, None]], *, role: str, region: str) -> None:
        """Compete for the lead forever; run ``work`` (cancelled when the lead is lost) while leading."""
        try:
            while True:
                progress()
                if await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms):
                    self.is_leader = True
                    log.info(f"{role}.leader", region=region, holder=self.token)
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._keep, tg.cancel_scope)
                        tg.start_soon(work)
                    self.is_leader = False
                    log.warning(f"{role}.leadership_lost", region=region)
                await anyio.sleep(self.ttl_ms / 3000)
        finally:
            self.is_leader = False
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                # Hand over at once instead of making the next leader wait for the TTL.
                await self._release(keys=[self.key], args=[self.token])

    async def _keep(self, scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(self.ttl_ms / 3000)
            if not await self._renew(keys=[self.key], args=[self.token, self.ttl_ms]):
                scope.cancel()
                return
            progress()
