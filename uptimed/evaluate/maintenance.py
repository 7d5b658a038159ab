"""Maintenance windows in the evaluator: what happens inside one is recorded, not announced.

The state machine decides changes as always. A change (or a reminder) made
while a maintenance window of its monitor is on is *held*: its incident is
opened or resolved and the state kept, but no event is published. The state
remembers the hold (``MonitorState.hold``: until the window's end, and what
the recipients last heard), and the one timer of the evaluator
(``state.next_wake_ms`` / ``state.tick``, owned by whoever owns the
monitor's partition) wakes the monitor when the window ends:

- still down then: announced once, as down ("still down after maintenance");
  with an escalation policy, to its first step, and the steps run again from
  the window's end unless someone acknowledged (none is due during the
  window: :mod:`uptimed.evaluate.escalation`);
- up again after the recipients last heard "down": announced up;
- otherwise (it went down and came back inside the window): nothing.

If another window is on at that moment the announcement is held in turn,
until that one ends. The checks made inside a window are stored with
``in_maintenance`` set, which uptime leaves out.

:class:`Windows` keeps every user's windows in memory, read again every
:data:`WINDOWS_CACHE_S`, and answers "is a window of this monitor on at this
time, and until when" without touching the database. Windows created, edited
or deleted while the daemon runs apply within that: a new one holds the
changes that follow; a hold whose window was deleted, cut short or extended
is moved to what the windows say now (:func:`retarget`), so deleting a window
releases its monitors at once instead of at the end it had.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from uptimed.evaluate import escalation
from uptimed.evaluate import state as machine
from uptimed.maintenance import MaintenanceWindow
from uptimed.monitor import Monitor
from uptimed.store import maintenance as stored_windows

log = structlog.get_logger()

WINDOWS_CACHE_S = 5.0
"""How long the windows read from PostgreSQL are used before they are read again (edits apply within this)."""
ENDED_KEPT = timedelta(days=2)
"""One-off windows that ended longer ago than this are not read: a backlog older than that is not held."""


@dataclass(frozen=True, slots=True)
class Hold:
    """Changes of a monitor were held back by a maintenance window."""

    until_ms: int
    """When the window ends: the timer wakes the monitor then."""
    announced_down: bool
    """Whether the recipients last heard "down" before the window (they hear "up" if it recovered)."""

    def to_json(self) -> dict[str, Any]:
        return {"until_ms": self.until_ms, "announced_down": self.announced_down}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Hold | None:
        if not data or data.get("until_ms") is None:
            return None
        return cls(until_ms=int(data["until_ms"]), announced_down=bool(data.get("announced_down")))


def wake_ms(state: machine.MonitorState) -> int | None:
    """When the window that holds this monitor's changes ends (the timer's business), None when none does."""
    return state.hold.until_ms if state.hold is not None else None


def release(state: machine.MonitorState, *, regions: Sequence[str], now_ms: int) -> machine.Evaluation | None:
    """At a window's end: the announcement the hold owes, or None when no hold has ended by ``now_ms``.

    Dated at the window's end, so two processes that both release it publish the same event.
    """
    hold = state.hold
    if hold is None or now_ms < hold.until_ms:
        return None
    after = replace(state, hold=None)
    statuses = machine.region_statuses(state.regions, regions)
    incident = state.incident
    if state.status is machine.MonitorStatus.DOWN:
        cause = f": {incident.cause}" if incident and incident.cause else ""
        escalated, step = (
            escalation.restart(state.escalation, hold.until_ms, keep_notified=hold.announced_down)
            if state.escalation is not None
            else (None, None)
        )
        change = machine.StateChange(
            kind=machine.ChangeKind.DOWN,
            at_ms=hold.until_ms,
            reason=f"still down after maintenance{cause}",
            regions=statuses,
            incident_opened_at_ms=incident.opened_at_ms if incident else None,
            incident_id=incident.id if incident else None,
            audience=escalated.audience if escalated is not None else None,
            step=step,
        )
        # Reminders count from this announcement; an escalation policy starts again from its first step.
        return machine.Evaluation(replace(after, last_reminder_at_ms=hold.until_ms, escalation=escalated), (change,))
    if state.status is machine.MonitorStatus.UP and hold.announced_down:
        change = machine.StateChange(
            kind=machine.ChangeKind.UP,
            at_ms=hold.until_ms,
            reason="up again: it recovered during maintenance",
            regions=statuses,
        )
        return machine.Evaluation(after, (change,))
    return machine.Evaluation(after)


def retarget(state: machine.MonitorState, *, end_ms: int | None, at_ms: int) -> machine.MonitorState:
    """``state`` with its hold ending when the windows on at ``at_ms`` end (``end_ms``), or at ``at_ms`` if none is.

    The windows may change while a monitor is held: one deleted or cut short
    releases the hold at once (its announcement dated ``at_ms``), one extended
    keeps it longer. A hold that has already ended is left to :func:`release`.
    """
    hold = state.hold
    if hold is None or at_ms >= hold.until_ms:
        return state
    until = end_ms if end_ms is not None else at_ms
    if until == hold.until_ms:
        return state
    return replace(state, hold=replace(hold, until_ms=until))


def hold_back(before: machine.MonitorState, outcome: machine.Evaluation, *, until_ms: int) -> machine.Evaluation:
    """``outcome`` with its changes held until ``until_ms`` (a window of the monitor is on when they happen)."""
    if not outcome.changes:
        return outcome
    previous = before.hold
    hold = Hold(
        until_ms=max(until_ms, previous.until_ms) if previous else until_ms,
        announced_down=previous.announced_down if previous else before.status is machine.MonitorStatus.DOWN,
    )
    changes = tuple(replace(change, held=True) for change in outcome.changes)
    state = replace(outcome.state, hold=hold)
    if any(change.kind is machine.ChangeKind.ESCALATED for change in changes):
        # A step held back reached nobody: the escalation stays where it was, and restarts when the window ends.
        state = replace(state, escalation=before.escalation)
    return replace(outcome, state=state, changes=changes)


@dataclass
class _Answer:
    """What one window said for a stretch of time: on until ``end_ms``, or off (None), for ``[since, until)``."""

    since_ms: int
    until_ms: int
    end_ms: int | None


class Windows:
    """Every user's maintenance windows, in memory; which monitor is in maintenance when."""

    def __init__(self, pool: asyncpg.Pool, *, clock: Callable[[], float] = time.time) -> None:
        self.pool = pool
        self.clock = clock
        self._by_owner: dict[int, list[MaintenanceWindow]] = {}
        self._read_at: float | None = None
        self._answers: dict[int, _Answer] = {}

    async def refresh(self) -> bool:
        """Read the windows again if the copy in memory is older than :data:`WINDOWS_CACHE_S`.

        Returns whether they changed (one created, edited or deleted since the last read).
        """
        now = time.monotonic()
        if self._read_at is not None and now - self._read_at < WINDOWS_CACHE_S:
            return False
        since = datetime.fromtimestamp(self.clock(), UTC) - ENDED_KEPT
        windows = await stored_windows.every(self.pool, ended_before=since)
        self._read_at = now
        return self.load(windows)

    def load(self, windows: Sequence[MaintenanceWindow]) -> bool:
        """Use ``windows`` from now on; returns whether they differ from those used so far."""
        by_owner: dict[int, list[MaintenanceWindow]] = defaultdict(list)
        for window in windows:
            by_owner[window.owner_id].append(window)
        if by_owner == self._by_owner:
            return False
        self._by_owner = dict(by_owner)
        self._answers.clear()
        return True

    def end_of(self, monitor: Monitor, at_ms: int) -> int | None:
        """When the maintenance of ``monitor`` that is on at ``at_ms`` ends (the latest of its windows), else None."""
        latest: int | None = None
        for window in self._by_owner.get(monitor.owner_id, ()):
            if not window.covers(monitor.id, monitor.owner_id, monitor.tags):
                continue
            end = self._on_until(window, at_ms)
            if end is not None and (latest is None or end > latest):
                latest = end
        return latest

    def _on_until(self, window: MaintenanceWindow, at_ms: int) -> int | None:
        answer = self._answers.get(window.id)
        if answer is not None and answer.since_ms <= at_ms < answer.until_ms:
            return answer.end_ms
        moment = datetime.fromtimestamp(at_ms / 1000, UTC)
        schedule = window.schedule
        on = schedule.covering(moment)
        if on is not None:
            answer = _Answer(_ms(on.start), _ms(on.end), _ms(on.end))
        else:
            following = schedule.next_after(moment)
            answer = _Answer(at_ms, _ms(following.start) if following else 2**62, None)
        self._answers[window.id] = answer
        return answer.end_ms


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
