"""Pruning old history: raw checks, finished notifications, published outbox events.

Each delete is small (one monitor's old checks, or 5,000 log rows) and its
own transaction, so pruning a year of backlog never holds long locks or a
long transaction; ``check_hours`` is never pruned (uptime history).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

BATCH = 5000
OUTBOX_KEEP_S = 86400.0
"""Published events stay a day in the outbox (for a look after an incident), then go."""


@dataclass(frozen=True)
class Pruned:
    checks: int
    notifications: int
    events: int


def _count(status: str) -> int:
    return int(status.split()[-1])


async def prune(pool: asyncpg.Pool, *, checks_s: float, notifications_s: float) -> Pruned:
    """Delete checks older than ``checks_s``, SENT/FAILED notifications older than ``notifications_s``."""
    pruned_checks = 0
    for monitor_id in await pool.fetchval("SELECT array_agg(id) FROM monitors") or []:
        # Through the (monitor_id, checked_at) index: one monitor's old rows at a time.
        pruned_checks += _count(
            await pool.execute(
                "DELETE FROM checks WHERE monitor_id = $1 AND checked_at < now() - make_interval(secs => $2)",
                monitor_id,
                checks_s,
            )
        )
    pruned_notifications = 0
    while True:
        # Old rows have the lowest ids: the primary key's order finds them first.
        deleted = _count(
            await pool.execute(
                """
            DELETE FROM notification_log WHERE id IN (
                SELECT id FROM notification_log
                WHERE status IN ('SENT', 'FAILED') AND updated_at < now() - make_interval(secs => $1)
                ORDER BY id LIMIT $2
            )
            """,
                notifications_s,
                BATCH,
            )
        )
        pruned_notifications += deleted
        if deleted < BATCH:
            break
    events = _count(
        await pool.execute(
            "DELETE FROM event_outbox WHERE published_at < now() - make_interval(secs => $1)", OUTBOX_KEEP_S
        )
    )
    return Pruned(checks=pruned_checks, notifications=pruned_notifications, events=events)
