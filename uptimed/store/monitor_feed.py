"""Every monitor, held once per process and kept current by PostgreSQL's change notifications.

The scheduler of each region, the probe workers and the evaluator all need
the monitors' definitions. Re-reading and validating every row every few
seconds cost a quarter to a third of the daemon's CPU at 10,000 monitors
(issue 18's profile). Instead, each process reads them once into a
:class:`MonitorFeed` and a :class:`MonitorListener` (a supervised part)
listens on the channel ``uptimed_monitors``, to which a trigger announces
every insert, update and delete of a monitor by its id: it reads just those
rows again, within ``BATCH_S`` of the change. A full read every ``RELOAD_S``
and after every reconnection (when notifications may have been missed) is
the safety net.

Each monitor is kept as an :class:`EncodedMonitor`: the validated Monitor,
its JSON (what a probe job carries) and a version (the JSON's CRC), made once
per change and shared by every part, so a probe worker in the same process
resolves a job to the same object instead of decoding it again.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import asyncpg
import structlog

from uptimed.monitor import REVEAL_SECRETS, Monitor
from uptimed.store import Connection, monitors
from uptimed.supervisor import progress

log = structlog.get_logger()

CHANNEL = "uptimed_monitors"
BATCH_S = 0.05
"""Notifications arriving within this long of each other are read in one query."""
RELOAD_S = 300.0
"""The safety net: every monitor read again this often (and after every reconnection)."""


@dataclass(frozen=True)
class EncodedMonitor:
    """A monitor serialised once per change, for every enqueue and every part until the next."""

    monitor: Monitor
    json: str
    version: int

    @classmethod
    def of(cls, monitor: Monitor) -> EncodedMonitor:
        # The worker needs a kind's credentials; defaults are left out (it validates them back): a third of the size.
        text = monitor.model_dump_json(context=REVEAL_SECRETS, exclude_defaults=True)
        return cls(monitor, text, zlib.crc32(text.encode()))


@dataclass
class Subscription:
    """The ids of monitors that changed since the subscriber last took them."""

    changed: set[int] = field(default_factory=set)
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self) -> set[int]:
        ids, self.changed = self.changed, set()
        self._event.clear()
        return ids

    async def wait(self, timeout: float) -> None:
        """Until something changed, or ``timeout`` seconds."""
        with anyio.move_on_after(timeout):
            await self._event.wait()

    def _notify(self, ids: set[int]) -> None:
        self.changed |= ids
        self._event.set()


class MonitorFeed:
    """The monitors this process knows, current within a moment of any change (see the module docs)."""

    def __init__(self) -> None:
        self.entries: dict[int, EncodedMonitor] = {}
        self.ready = asyncio.Event()
        """Set after the first full read."""
        self._rows: dict[int, bytes] = {}
        """Each monitor's row, as a digest of its values: what tells a change (the whole row would cost 1.6 KiB)."""
        self._subscriptions: list[Subscription] = []

    def get(self, monitor_id: int) -> Monitor | None:
        entry = self.entries.get(monitor_id)
        return entry.monitor if entry else None

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.remove(subscription)

    def monitors(self, ids: Iterable[int]) -> dict[int, Monitor]:
        """The monitors of ``ids`` that exist."""
        return {mid: entry.monitor for mid in ids if (entry := self.entries.get(mid)) is not None}

    def replace(self, rows: Iterable[asyncpg.Record]) -> set[int]:
        """A full read: these are all the monitors there are. Returns the ids that changed."""
        items = [_row(row) for row in rows]
        changed = self._apply(items, gone=set(self.entries) - {values[0] for values, _ in items})
        self.ready.set()
        return changed

    def update(self, ids: Iterable[int], rows: Iterable[asyncpg.Record]) -> set[int]:
        """The rows read again for ``ids``; an id without a row was deleted. Returns the ids that changed."""
        items = [_row(row) for row in rows]
        return self._apply(items, gone=set(ids) - {values[0] for values, _ in items})

    def put(self, monitors_: Iterable[Monitor]) -> set[int]:
        """Set monitors directly (tests, benchmarks): each replaces the one with its id."""
        return self._apply([((m.id, m.model_dump_json()), _given(m)) for m in monitors_], gone=set())

    def remove(self, ids: Iterable[int]) -> set[int]:
        return self._apply([], gone=set(ids))

    def _apply(self, items: list[tuple[tuple[Any, ...], Callable[[], Monitor]]], *, gone: set[int]) -> set[int]:
        changed: set[int] = set()
        for values, make in items:
            mid = values[0]
            # repr tells apart what == would not (1 and True in a JSON option), and a digest is 1/30 the row's size.
            digest = hashlib.blake2b(repr(values).encode(), digest_size=16).digest()
            if self._rows.get(mid) == digest:
                continue  # unchanged in every column: keep the object (and its encoding)
            self._rows[mid] = digest
            self.entries[mid] = EncodedMonitor.of(make())
            changed.add(mid)
        for mid in gone:
            if self.entries.pop(mid, None) is not None:
                changed.add(mid)
            self._rows.pop(mid, None)
        if changed:
            for subscription in self._subscriptions:
                subscription._notify(changed)
        return changed


class MonitorListener:
    """The part that keeps a :class:`MonitorFeed` current from PostgreSQL."""

    def __init__(self, feed: MonitorFeed, pool: asyncpg.Pool, *, reload_s: float = RELOAD_S) -> None:
        self.feed = feed
        self.pool = pool
        self.reload_s = reload_s
        self._pending: set[int] = set()
        self._arrived = asyncio.Event()
        self._lost = asyncio.Event()

    async def run(self) -> None:
        async with self.pool.acquire() as conn:
            self._lost.clear()
            await conn.add_listener(CHANNEL, self._on_notification)
            conn.add_termination_listener(self._on_termination)
            try:
                await self._reload(conn)  # after LISTEN: a change during the read is notified too
                await self._follow(conn)
            finally:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await _stop_listening(conn, self)

    async def _follow(self, conn: Connection) -> None:
        next_reload = time.monotonic() + self.reload_s
        while True:
            progress()
            with anyio.move_on_after(min(1.0, max(0.0, next_reload - time.monotonic()))):
                await self._arrived.wait()
            if self._lost.is_set():
                raise ConnectionError("the connection listening for monitor changes was lost")
            if time.monotonic() >= next_reload:
                await self._reload(conn)
                next_reload = time.monotonic() + self.reload_s
                continue
            if not self._pending:
                continue
            await anyio.sleep(BATCH_S)  # gather the rest of a burst (a config sync, a bulk edit)
            ids, self._pending = self._pending, set()
            self._arrived.clear()
            changed = self.feed.update(ids, await monitors.rows_of(conn, ids))
            if changed:
                log.debug("monitors.changed", monitors=len(changed))

    async def _reload(self, conn: Connection) -> None:
        self._pending.clear()
        self._arrived.clear()
        changed = self.feed.replace(await monitors.rows_of(conn))
        log.info("monitors.loaded", monitors=len(self.feed.entries), changed=len(changed))

    def _on_notification(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        try:
            self._pending.add(int(str(payload)))  # a monitor's id: the trigger sends it as text
        except ValueError:
            return
        self._arrived.set()

    def _on_termination(self, conn: Any) -> None:
        self._lost.set()
        self._arrived.set()


async def _stop_listening(conn: Connection, listener: MonitorListener) -> None:
    """Leave the connection as the pool lent it; one that died meanwhile is the pool's to replace."""
    try:
        conn.remove_termination_listener(listener._on_termination)
        if not conn.is_closed():
            await conn.remove_listener(CHANNEL, listener._on_notification)
    except (asyncpg.InterfaceError, asyncpg.PostgresError, OSError):
        pass


def _row(row: asyncpg.Record) -> tuple[tuple[Any, ...], Callable[[], Monitor]]:
    """A row's values (to tell a change) and how to make its Monitor (only when it changed)."""
    return tuple(row.values()), lambda: monitors.monitor_from_row(row)


def _given(monitor: Monitor) -> Callable[[], Monitor]:
    """A monitor that is already made, as :meth:`MonitorFeed._apply` takes one."""
    return lambda: monitor
