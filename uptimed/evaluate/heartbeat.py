"""Missed heartbeats: the evaluator's timer decides them, on the same footing as reminders.

Pure, like the state machine. A heartbeat monitor's results are its pings (one
region, :data:`~uptimed.monitor.PUSH_REGION`, thresholds of one). While its
newest ping was a good one, the timer is set for that ping's deadline
(``HeartbeatOptions.deadline_ms``); when it fires with no newer ping, the
timer makes a DOWN result dated at the deadline (error class ``missed``),
which the state machine folds in like any other: the monitor goes down once,
and a ping brings it up. The result's time, and so its event's id, follow
from the last ping and the schedule alone: whichever process fires it, and
however often (a restart, a rebalance), it is the same result, stored once.
Once down, no further misses are made; reminders take over. An edit of the
schedule wakes the timer at once (the evaluator follows the monitor feed), so
a shorter period moves the pending miss earlier, in PostgreSQL too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.durations import format_duration
from uptimed.monitor import PUSH_REGION, MonitorFields
from uptimed.probe.heartbeat import HeartbeatOptions

if TYPE_CHECKING:
    from uptimed.evaluate.state import MonitorState

SETTLE_MS = 1000
"""A miss is decided this long after its deadline: a ping sent just in time may still be on its way."""


def _options(monitor: MonitorFields) -> HeartbeatOptions | None:
    if monitor.scheduled:
        return None
    options = monitor.options
    return options if isinstance(options, HeartbeatOptions) else None


def deadline_ms(state: MonitorState, monitor: MonitorFields) -> int | None:
    """When the next ping of a heartbeat monitor is missed; None when it expects none.

    None before its first ping (a new heartbeat waits for it) and while it is
    down (a miss or a reported failure: the next good ping brings it up).
    """
    options = _options(monitor)
    if options is None:
        return None
    pings = state.regions.get(PUSH_REGION)
    if pings is None or pings.last_status is not CheckStatus.UP or pings.last_checked_at_ms is None:
        return None
    return options.deadline_ms(pings.last_checked_at_ms)


def wake_ms(state: MonitorState, monitor: MonitorFields) -> int | None:
    """When the timer must look at this monitor for a missed ping (see :data:`SETTLE_MS`)."""
    due = deadline_ms(state, monitor)
    return None if due is None else due + SETTLE_MS


def missed_ping(state: MonitorState, monitor: MonitorFields, now_ms: int) -> CheckResult | None:
    """The DOWN result of a ping missed by ``now_ms``, or None."""
    due = deadline_ms(state, monitor)
    options = _options(monitor)
    if due is None or options is None or now_ms < due + SETTLE_MS:
        return None
    pings = state.regions[PUSH_REGION]
    last = pings.last_checked_at_ms or 0
    return CheckResult(
        monitor_id=getattr(monitor, "id", 0),  # the stored Monitor the evaluator passes has it
        region=PUSH_REGION,
        status=CheckStatus.DOWN,
        error_class=ErrorClass.MISSED,
        error=f"no ping for {format_duration((due - last) / 1000)} (expected {options.describe()})",
        checked_at_ms=due,
    )
