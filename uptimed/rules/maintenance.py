"""A user's maintenance windows: which are on or coming, for which monitors; adding, changing, deleting them.

The windows themselves are :mod:`uptimed.maintenance`; what they do to
alerts is the evaluator's (:mod:`uptimed.evaluate.maintenance`). Here is what
both faces need: the monitors a window names are the user's own, one declared
in the config file changes only there, and each monitor's current or next
maintenance as the dashboard, the monitor page and the status page show it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from uptimed.maintenance import MaintenanceIn, MaintenanceWindow, Occurrence
from uptimed.monitor import Monitor
from uptimed.rules.errors import DeclaredInFile, Invalid, NotFound, Problem
from uptimed.store import maintenance, monitors

log = structlog.get_logger()

UPCOMING = timedelta(days=7)
"""How far ahead the pages announce maintenance."""


@dataclass(frozen=True)
class Planned:
    """A window that is on, or comes, for some monitors."""

    window: MaintenanceWindow
    occurrence: Occurrence
    monitor_ids: tuple[int, ...]
    """The monitors of those asked about that it covers."""

    @property
    def ongoing(self) -> bool:
        return self.occurrence.start <= datetime.now(UTC)


def planned(
    windows: Iterable[MaintenanceWindow], chosen: Iterable[Monitor], *, now: datetime, ahead: timedelta = UPCOMING
) -> list[Planned]:
    """Each window on at ``now`` or starting within ``ahead`` that covers any of ``chosen``; ongoing first, then soonest."""
    found: list[Planned] = []
    chosen = list(chosen)
    for window in windows:
        covered = tuple(m.id for m in chosen if window.covers(m.id, m.owner_id, m.tags))
        if not covered:
            continue
        schedule = window.schedule
        occurrence = schedule.covering(now) or schedule.next_after(now)
        if occurrence is None or occurrence.start - now > ahead:
            continue
        found.append(Planned(window, occurrence, covered))
    return sorted(found, key=lambda p: (p.occurrence.start > now, p.occurrence.start, p.window.id))


def in_maintenance(found: Iterable[Planned], monitor_id: int, now: datetime) -> Planned | None:
    """The ongoing maintenance of one monitor among ``found`` (the one that ends last), None when none is on."""
    on = [p for p in found if monitor_id in p.monitor_ids and p.occurrence.start <= now]
    return max(on, key=lambda p: p.occurrence.end, default=None)


async def for_monitors(pool: asyncpg.Pool, owner_id: int, chosen: Iterable[Monitor]) -> list[Planned]:
    """The owner's ongoing and upcoming maintenance of ``chosen`` (their own monitors)."""
    windows = await maintenance.for_owner(pool, owner_id)
    return planned(windows, chosen, now=datetime.now(UTC)) if windows else []


async def window(pool: asyncpg.Pool, user_id: int, window_id: int, *, to_change: bool = False) -> MaintenanceWindow:
    """The user's window; with ``to_change``, only one the config file does not declare."""
    found = await maintenance.get_owned(pool, user_id, window_id)
    if found is None:
        raise NotFound("maintenance window")
    if to_change and found.declared_in_file:
        raise DeclaredInFile("maintenance window")
    return found


async def _checked(pool: asyncpg.Pool, user_id: int, fields: MaintenanceIn) -> MaintenanceIn:
    owned = set(await monitors.owned_ids(pool, user_id))
    strangers = [i for i in fields.monitor_ids if i not in owned]
    if strangers:
        raise Invalid([Problem(("monitor_ids",), f"you have no monitor #{strangers[0]}", "unknown_monitor")])
    return fields


async def create(pool: asyncpg.Pool, user_id: int, fields: MaintenanceIn) -> MaintenanceWindow:
    """A new window of the user; :class:`Invalid` when it names a monitor that is not theirs."""
    window_id = await maintenance.create(pool, user_id, await _checked(pool, user_id, fields))
    log.info("maintenance.created", window_id=window_id, user_id=user_id)
    return await window(pool, user_id, window_id)


async def update(pool: asyncpg.Pool, item: MaintenanceWindow, fields: MaintenanceIn) -> MaintenanceWindow:
    """Replace every field of ``item`` (read ``to_change``)."""
    if not await maintenance.update_owned(pool, item.owner_id, item.id, await _checked(pool, item.owner_id, fields)):
        raise NotFound("maintenance window")
    log.info("maintenance.updated", window_id=item.id, user_id=item.owner_id)
    return await window(pool, item.owner_id, item.id)


async def delete(pool: asyncpg.Pool, item: MaintenanceWindow) -> None:
    """Delete ``item`` (read ``to_change``)."""
    if not await maintenance.delete_owned(pool, item.owner_id, item.id):
        raise NotFound("maintenance window")
    log.info("maintenance.deleted", window_id=item.id, user_id=item.owner_id)
