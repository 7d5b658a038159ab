"""Public badges of a monitor: opt-in, under a random key, showing one figure each and nothing else.

A badge's address names only the key, never the monitor's id, name or
target: turning badges off (or on again, which draws a new key) makes every
address handed out before answer 404, like one that never existed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

import asyncpg
import structlog

from uptimed.monitor import Monitor
from uptimed.rules import status as monitor_status
from uptimed.rules.errors import NotFound
from uptimed.store import monitors

log = structlog.get_logger()

Period = Literal["24h", "7d", "30d"]
PERIODS: tuple[Period, ...] = ("24h", "7d", "30d")
KINDS = ("status", "uptime", "response")


@dataclass(frozen=True)
class Figures:
    """All a badge may show of a monitor."""

    status: str
    """up, down, slow, paused, unknown, or maintenance."""
    uptime: dict[str, float | None]
    """Per period, percent of checks up (maintenance left out); None without checks."""
    response_time_ms: float | None


async def enable(pool: asyncpg.Pool, monitor: Monitor) -> Monitor:
    """Give ``monitor`` public badges under a new key (an old key stops working)."""
    updated = await monitors.set_badge_key(pool, monitor.owner_id, monitor.id, secrets.token_urlsafe(12))
    if updated is None:
        raise NotFound("monitor")
    log.info("monitor.badges_enabled", monitor_id=monitor.id, user_id=monitor.owner_id)
    return updated


async def disable(pool: asyncpg.Pool, monitor: Monitor) -> Monitor:
    """Take ``monitor``'s badges down: their addresses answer 404 from now on."""
    updated = await monitors.set_badge_key(pool, monitor.owner_id, monitor.id, None)
    if updated is None:
        raise NotFound("monitor")
    log.info("monitor.badges_disabled", monitor_id=monitor.id, user_id=monitor.owner_id)
    return updated


async def figures(pool: asyncpg.Pool, key: str, *, silence_intervals: float) -> Figures | None:
    """What the badges under ``key`` show; None when no monitor has that key."""
    if not 8 <= len(key) <= 64:
        return None
    monitor = await monitors.get_by_badge_key(pool, key)
    if monitor is None:
        return None
    view = await monitor_status.one(pool, monitor.owner_id, monitor.id, silence_intervals=silence_intervals)
    shown = "maintenance" if view.maintenance is not None and view.status != "paused" else view.shown
    return Figures(
        status=shown,
        uptime={"24h": view.uptime_24h, "7d": view.uptime_7d, "30d": view.uptime_30d},
        response_time_ms=view.last_response_time_ms,
    )
