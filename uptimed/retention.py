"""The retention part: once an hour, one process of the cluster prunes old history (see store.retention)."""

from __future__ import annotations

import anyio
import asyncpg
import structlog

from uptimed.config import RetentionSettings
from uptimed.store import retention

log = structlog.get_logger()

EVERY_S = 3600.0
FIRST_AFTER_S = 60.0
"""Not at start-up: a restart loop must not turn into a pruning loop."""

_LOCK = 0x7570_7472  # "uptr": held by the one process pruning


class Retention:
    def __init__(self, *, pool: asyncpg.Pool, settings: RetentionSettings) -> None:
        self.pool = pool
        self.settings = settings

    async def run(self) -> None:
        await anyio.sleep(FIRST_AFTER_S)
        while True:
            await self.prune_once()
            await anyio.sleep(EVERY_S)

    async def prune_once(self) -> retention.Pruned | None:
        """Prune unless another process is at it (then None)."""
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
                return None
            try:
                pruned = await retention.prune(
                    self.pool, checks_s=self.settings.checks, notifications_s=self.settings.notifications
                )
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)
        log.info("retention.pruned", checks=pruned.checks, notifications=pruned.notifications, events=pruned.events)
        return pruned
