"""Maintenance in the state machine over plain data: changes held inside a window, the announcement at its end."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.evaluate.escalation import Acknowledgement, Policy, Step
from uptimed.evaluate.events import event_id_for
from uptimed.evaluate.maintenance import Hold, Windows, hold_back, retarget
from uptimed.evaluate.state import (
    ChangeKind,
    Evaluation,
    MonitorState,
    MonitorStatus,
    StateChange,
    acknowledge,
    evaluate,
    next_wake_ms,
    tick,
)
from uptimed.maintenance import MaintenanceWindow
from uptimed.monitor import Monitor

T0 = 1_700_000_000_000
STEP = 60_000
MONITOR = Monitor(
    id=42, owner_id=7, name="shop", target="https://shop.example/", failure_threshold=1, success_threshold=1
)
REGIONS = ["default"]


def check(ok: bool, at: int) -> CheckResult:
    if ok:
        return CheckResult(monitor_id=42, region="default", status=CheckStatus.UP, response_time_ms=5, checked_at_ms=at)
    return CheckResult(
        monitor_id=42,
        region="default",
        status=CheckStatus.DOWN,
        error_class=ErrorClass.STATUS,
        error="HTTP 503",
        checked_at_ms=at,
    )


class Machine:
    """The evaluator's loop in miniature: results, a window [start, end), and the timer."""

    def __init__(self, window: tuple[int, int], monitor: Monitor = MONITOR, policy: Policy | None = None) -> None:
        self.window = window
        self.monitor = monitor
        self.policy = policy
        self.state = MonitorState()
        self.announced: list[tuple[ChangeKind, str, int]] = []
        self.changes: list[StateChange] = []
        """The announced changes themselves (audience, step)."""
        self.held: list[ChangeKind] = []

    def _take(self, before: MonitorState, outcome: Evaluation, at: int) -> None:
        start, end = self.window
        if start <= at < end:
            outcome = hold_back(before, outcome, until_ms=end)
        if outcome.accepted:
            # Through JSON, as the evaluator stores it.
            self.state = MonitorState.from_json(json.loads(json.dumps(outcome.state.to_json())))
        for change in outcome.changes:
            if change.held:
                self.held.append(change.kind)
            else:
                self.announced.append((change.kind, change.reason, change.at_ms))
                self.changes.append(change)

    def result(self, ok: bool, at: int) -> None:
        before = self.state
        outcome = evaluate(before, check(ok, at), monitor=self.monitor, regions=REGIONS, policy=self.policy)
        self._take(before, outcome, at)

    def timer(self, now: int) -> None:
        wake = next_wake_ms(self.state, self.monitor)
        if wake is not None and wake <= now:
            before = self.state
            self._take(before, tick(before, monitor=self.monitor, regions=REGIONS, now_ms=now, policy=self.policy), now)

    def run_timer(self, until: int) -> None:
        """The timer as the evaluator runs it: whenever the state asks, up to ``until``."""
        while (wake := next_wake_ms(self.state, self.monitor)) is not None and wake <= until:
            self.timer(wake)

    def kinds(self) -> list[ChangeKind]:
        return [kind for kind, _, _ in self.announced]


def test_a_flapping_monitor_inside_a_window_announces_nothing_and_ends_up() -> None:
    m = Machine((T0 + 2 * STEP, T0 + 20 * STEP))
    m.result(True, T0)
    for n in range(2, 18):
        m.result(n % 2 == 1, T0 + n * STEP)  # down, up, down, ... inside the window
        m.timer(T0 + n * STEP)
    m.result(True, T0 + 18 * STEP)
    assert m.held == [ChangeKind.DOWN, ChangeKind.UP] * 8
    assert next_wake_ms(m.state, MONITOR) == T0 + 20 * STEP  # the window's end: the hold is released then
    m.timer(T0 + 20 * STEP)
    m.result(True, T0 + 21 * STEP)
    assert m.announced == []
    assert m.state.hold is None and m.state.status is MonitorStatus.UP


def test_a_monitor_still_down_when_the_window_ends_is_announced_once_then() -> None:
    m = Machine((T0 + 2 * STEP, T0 + 10 * STEP))
    m.result(True, T0)
    m.result(False, T0 + 3 * STEP)
    m.result(True, T0 + 4 * STEP)
    m.result(False, T0 + 5 * STEP)
    m.timer(T0 + 9 * STEP)
    assert m.announced == []
    m.timer(T0 + 10 * STEP)
    m.timer(T0 + 11 * STEP)
    m.result(False, T0 + 12 * STEP)
    assert m.announced == [(ChangeKind.DOWN, "still down after maintenance: status: HTTP 503", T0 + 10 * STEP)]
    assert m.state.incident is not None and m.state.incident.opened_at_ms == T0 + 5 * STEP
    m.result(True, T0 + 13 * STEP)
    assert m.kinds() == [ChangeKind.DOWN, ChangeKind.UP]


def test_a_result_after_the_window_releases_the_hold_before_its_own_change() -> None:
    m = Machine((T0 + 2 * STEP, T0 + 10 * STEP))
    m.result(True, T0)
    m.result(False, T0 + 3 * STEP)
    m.result(True, T0 + 11 * STEP)  # the timer has not fired yet (a backlog): the order is kept
    assert m.kinds() == [ChangeKind.DOWN, ChangeKind.UP]
    assert m.announced[0][2] == T0 + 10 * STEP


def test_a_recovery_inside_the_window_after_an_announced_outage_is_announced_at_its_end() -> None:
    m = Machine((T0 + 5 * STEP, T0 + 10 * STEP))
    m.result(False, T0)
    assert m.kinds() == [ChangeKind.DOWN]
    m.result(True, T0 + 6 * STEP)
    assert m.kinds() == [ChangeKind.DOWN]
    m.timer(T0 + 10 * STEP)
    assert m.kinds() == [ChangeKind.DOWN, ChangeKind.UP]
    assert m.announced[-1][1] == "up again: it recovered during maintenance"


def test_reminders_inside_a_window_are_held_and_the_end_announces_once() -> None:
    monitor = MONITOR.model_copy(update={"repeat_interval": 60.0})
    m = Machine((T0 + 5 * STEP, T0 + 10 * STEP), monitor)
    m.result(False, T0)
    for n in range(1, 12):
        m.timer(T0 + n * STEP)
    assert m.kinds() == [
        ChangeKind.DOWN,
        ChangeKind.REMINDER,
        ChangeKind.REMINDER,
        ChangeKind.REMINDER,
        ChangeKind.REMINDER,
        ChangeKind.DOWN,
        ChangeKind.REMINDER,
    ]
    assert m.held == [ChangeKind.REMINDER] * 5
    assert m.announced[5][1].startswith("still down after maintenance")


def test_a_window_that_follows_another_keeps_holding() -> None:
    m = Machine((T0 + 2 * STEP, T0 + 10 * STEP))
    m.result(True, T0)
    m.result(False, T0 + 3 * STEP)
    m.window = (T0 + 10 * STEP, T0 + 20 * STEP)  # the next window starts as this one ends
    m.timer(T0 + 10 * STEP)
    assert m.announced == []
    assert m.state.hold == Hold(until_ms=T0 + 20 * STEP, announced_down=False)
    m.timer(T0 + 20 * STEP)
    assert m.kinds() == [ChangeKind.DOWN]


def test_a_hold_follows_its_windows_when_they_change() -> None:
    m = Machine((T0 + 2 * STEP, T0 + 10 * STEP))
    m.result(True, T0)
    m.result(False, T0 + 3 * STEP)
    held = m.state
    assert held.hold == Hold(until_ms=T0 + 10 * STEP, announced_down=False)
    # Unchanged windows leave it alone; an extended or shortened one moves its end.
    assert retarget(held, end_ms=T0 + 10 * STEP, at_ms=T0 + 4 * STEP) is held
    assert retarget(held, end_ms=T0 + 30 * STEP, at_ms=T0 + 4 * STEP).hold == Hold(T0 + 30 * STEP, False)
    assert retarget(held, end_ms=T0 + 6 * STEP, at_ms=T0 + 4 * STEP).hold == Hold(T0 + 6 * STEP, False)
    # Deleted: it ends now, and the timer announces the monitor still down, dated then.
    m.state = retarget(held, end_ms=None, at_ms=T0 + 4 * STEP)
    assert next_wake_ms(m.state, MONITOR) == T0 + 4 * STEP
    m.window = (0, 0)
    m.timer(T0 + 4 * STEP)
    assert m.announced == [(ChangeKind.DOWN, "still down after maintenance: status: HTTP 503", T0 + 4 * STEP)]
    # A hold already over is left to its release.
    assert retarget(held, end_ms=None, at_ms=T0 + 10 * STEP) is held


ON_CALL = Policy(id=9, name="ops", steps=(Step(0, (1,), "on call"), Step(5 * STEP, (2,), "lead")))


def test_an_outage_that_outlasts_the_window_pages_the_policy_from_its_first_step_at_the_end() -> None:
    m = Machine((T0 + 2 * STEP, T0 + 30 * STEP), policy=ON_CALL)
    m.result(True, T0)
    m.result(False, T0 + 3 * STEP)  # opens inside the window: held, and so is its first step
    # Nobody is paged while the window is on, the lead's step included (due 5 minutes in).
    assert next_wake_ms(m.state, MONITOR) == T0 + 30 * STEP
    m.run_timer(T0 + 29 * STEP)
    assert m.announced == [] and m.held == [ChangeKind.DOWN]

    m.run_timer(T0 + 30 * STEP)
    (still,) = m.changes
    assert still.kind is ChangeKind.DOWN and still.reason == "still down after maintenance: status: HTTP 503"
    assert still.audience == (1,) and still.step is not None and (still.step.number, still.step.name) == (1, "on call")
    # The lead is paged if nobody acknowledges within the step's 5 minutes, counted from the window's end.
    assert next_wake_ms(m.state, MONITOR) == T0 + 35 * STEP
    m.run_timer(T0 + 35 * STEP)
    assert [(c.kind, c.audience) for c in m.changes[1:]] == [(ChangeKind.ESCALATED, (2,))]
    assert m.changes[1].reason.startswith("still down for 32m, escalated to step 2 of 2 (lead)")
    m.result(True, T0 + 36 * STEP)
    assert m.changes[-1].kind is ChangeKind.UP and m.changes[-1].audience == (1, 2)  # those who really heard


def test_an_announced_outage_pages_again_after_the_window_with_new_event_ids() -> None:
    m = Machine((T0 + 2 * STEP, T0 + 10 * STEP), policy=ON_CALL)
    m.result(False, T0)  # announced before the window: step 1 pages at once
    assert m.changes[0].audience == (1,)
    (unheld_step_2,) = tick(m.state, monitor=MONITOR, regions=REGIONS, now_ms=T0 + 5 * STEP, policy=ON_CALL).changes
    m.run_timer(T0 + 9 * STEP)  # step 2 fell due inside the window: held back, once
    assert len(m.changes) == 1 and m.held == [ChangeKind.ESCALATED]
    assert m.state.escalation is not None and m.state.escalation.notified == (1,)  # the lead heard nothing
    m.run_timer(T0 + 15 * STEP)
    assert [(c.kind, c.audience, c.at_ms) for c in m.changes[1:]] == [
        (ChangeKind.DOWN, (1,), T0 + 10 * STEP),
        (ChangeKind.ESCALATED, (2,), T0 + 15 * STEP),
    ]
    # Each step after the window is an event of its own: had step 2 gone out before the window, the
    # notifier's (event, integration) key would otherwise drop this one as already sent.
    assert event_id_for(m.changes[2], 42) != event_id_for(unheld_step_2, 42)
    assert len({event_id_for(c, 42) for c in m.changes}) == len(m.changes)


def test_an_incident_acknowledged_during_the_window_stays_with_whoever_took_it() -> None:
    m = Machine((T0 + 2 * STEP, T0 + 10 * STEP), policy=ON_CALL)
    m.result(False, T0)
    m.run_timer(T0 + 6 * STEP)  # step 2 (due at 5 minutes, inside the window) is held back
    ack = Acknowledgement(at_ms=T0 + 7 * STEP, by="alice", via="page")
    m.state = acknowledge(m.state, ack, regions=REGIONS, now_ms=T0 + 7 * STEP).state
    m.run_timer(T0 + 20 * STEP)
    assert [(c.kind, c.audience, c.step) for c in m.changes[1:]] == [(ChangeKind.DOWN, (1,), None)]
    assert next_wake_ms(m.state, MONITOR) is None  # alice has it: no step, no reminder


def at(*parts: int) -> int:
    return round(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def test_windows_answer_which_monitor_is_in_maintenance_until_when() -> None:
    windows = Windows(pool=None)  # type: ignore[arg-type]
    weekly = {"name": "db", "days": ["sun"], "at": "01:00", "duration": "2h", "time_zone": "Europe/Berlin"}
    windows.load(
        [
            MaintenanceWindow(id=1, owner_id=7, tags=["db"], **weekly),
            MaintenanceWindow(
                id=2,
                owner_id=7,
                monitor_ids=[42],
                name="once",
                start="2025-04-01T10:00:00Z",
                end="2025-04-01T11:00:00Z",
            ),
            MaintenanceWindow(
                id=3,
                owner_id=8,
                all_monitors=True,
                name="other user",
                start="2025-04-01T00:00:00Z",
                end="2025-04-02T00:00:00Z",
            ),
        ]
    )
    tagged = MONITOR.model_copy(update={"tags": ["db"], "id": 43})
    # Sunday 2025-04-06 01:00 in Berlin is 2025-04-05 23:00 UTC (summer time).
    assert windows.end_of(tagged, at(2025, 4, 5, 22, 59)) is None
    assert windows.end_of(tagged, at(2025, 4, 5, 23, 0)) == at(2025, 4, 6, 1, 0)
    assert windows.end_of(tagged, at(2025, 4, 6, 0, 59)) == at(2025, 4, 6, 1, 0)
    assert windows.end_of(MONITOR, at(2025, 4, 5, 23, 30)) is None  # not tagged
    assert windows.end_of(MONITOR, at(2025, 4, 1, 10, 30)) == at(2025, 4, 1, 11, 0)
    assert windows.end_of(tagged, at(2025, 4, 1, 10, 30)) is None  # another user's window covers all of theirs
