"""A monitor's status as the API and the pages show it: the evaluator's verdict, its last check, its uptime."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from uptimed.evaluate.state import DEFAULT_SILENCE_INTERVALS, MonitorState, MonitorStatus, silence_ms_for
from uptimed.monitor import Monitor
from uptimed.rules import maintenance as planned_maintenance
from uptimed.rules.errors import NotFound
from uptimed.rules.maintenance import Planned
from uptimed.store import monitors
from uptimed.store.monitors import Filter, MonitorOverview

Status = Literal["up", "down", "unknown", "paused"]


@dataclass(frozen=True)
class MonitorView:
    """A monitor with what both faces show beside it."""

    monitor: Monitor
    status: Status
    """The evaluator's verdict; ``paused`` when disabled, ``unknown`` before enough checks."""
    slow: bool
    """Up, but slower than ``slow_threshold_ms``."""
    silent_regions: tuple[str, ...]
    """Regions that stopped reporting for this monitor: its quorum is taken over the others."""
    down_since: datetime | None
    last_checked_at: datetime | None
    last_response_time_ms: float | None
    uptime_24h: float | None
    uptime_7d: float | None
    uptime_30d: float | None
    """Percent of checks up in each window; None without checks in it."""
    created_at: datetime
    updated_at: datetime
    maintenance: Planned | None = None
    """The maintenance window on for it now, if any: alerts are held until it ends."""

    @property
    def shown(self) -> str:
        """What a badge says: up, down, slow, paused or unknown."""
        return "slow" if self.slow else self.status


_FIGURES = (
    "last_checked_at",
    "last_response_time_ms",
    "uptime_24h",
    "uptime_7d",
    "uptime_30d",
    "created_at",
    "updated_at",
)
"""What a view takes from the store's overview as it is."""


def _state(raw: Any) -> MonitorState:
    try:
        return MonitorState.from_json(raw)
    except (ValueError, TypeError):
        return MonitorState()


def view(
    overview: MonitorOverview,
    *,
    silence_intervals: float = DEFAULT_SILENCE_INTERVALS,
    now_ms: float | None = None,
    maintenance: Planned | None = None,
) -> MonitorView:
    """``overview`` (a stored monitor with its state and figures) as shown.

    A monitor that was up but whose every region has been silent for
    ``silence_intervals`` of its intervals is shown ``unknown``.
    """
    monitor = overview.monitor
    state = _state(overview.state)
    status: Status = "paused" if not monitor.enabled else state.status.value
    newest = state.newest_result_ms
    now = time.time() * 1000 if now_ms is None else now_ms
    if status == "up" and newest is not None and now - newest > silence_ms_for(monitor, silence_intervals):
        status = "unknown"  # every region is silent: it was up, nobody knows what it is now
    down_since = state.down_since_ms if state.status is MonitorStatus.DOWN else None
    return MonitorView(
        monitor=monitor,
        status=status,
        slow=status == "up" and state.slow,
        silent_regions=tuple(state.silent) if monitor.enabled else (),
        down_since=datetime.fromtimestamp(down_since / 1000, tz=UTC) if down_since else None,
        maintenance=maintenance,
        **{name: getattr(overview, name) for name in _FIGURES},
    )


async def one(
    pool: asyncpg.Pool, user_id: int, monitor_id: int, *, silence_intervals: float = DEFAULT_SILENCE_INTERVALS
) -> MonitorView:
    """The user's monitor as shown; :class:`~uptimed.rules.errors.NotFound` if they have none of that id."""
    overview = await monitors.get_overview(pool, user_id, monitor_id)
    if overview is None:
        raise NotFound("monitor")
    found = await planned_maintenance.for_monitors(pool, user_id, [overview.monitor])
    now = datetime.now(UTC)
    return view(
        overview,
        silence_intervals=silence_intervals,
        maintenance=planned_maintenance.in_maintenance(found, monitor_id, now),
    )


async def page(
    pool: asyncpg.Pool,
    user_id: int,
    *,
    after_id: int | None,
    limit: int,
    silence_intervals: float = DEFAULT_SILENCE_INTERVALS,
    only: Filter | None = None,
) -> list[MonitorView]:
    """The user's monitors in creation (id) order, after ``after_id``, as shown; ``only`` filters them."""
    overviews = await monitors.page_overviews(pool, user_id, after_id=after_id, limit=limit, only=only)
    found = await planned_maintenance.for_monitors(pool, user_id, [o.monitor for o in overviews])
    now = datetime.now(UTC)
    return [
        view(
            o,
            silence_intervals=silence_intervals,
            maintenance=planned_maintenance.in_maintenance(found, o.monitor.id, now),
        )
        for o in overviews
    ]
