"""Missed heartbeats, decided by the state machine's timer: pure functions over plain data, no service.

Times are ms since the epoch; a ping is an UP result of region ``push``, a
reported failure a DOWN one, as :mod:`uptimed.probe.pings` makes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.evaluate.events import event_id_for
from uptimed.evaluate.heartbeat import SETTLE_MS, deadline_ms
from uptimed.evaluate.state import ChangeKind, Evaluation, MonitorState, evaluate, next_wake_ms, tick
from uptimed.monitor import PUSH_REGION, Monitor
from uptimed.probe.heartbeat import HeartbeatOptions

T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z
MINUTE = 60_000


def heartbeat(**options: Any) -> Monitor:
    return Monitor.model_validate(
        {"id": 5, "owner_id": 1, "name": "backup", "kind": "heartbeat", "heartbeat": options, "repeat_interval": None}
    )


def ping(at_ms: int, ok: bool = True) -> CheckResult:
    if ok:
        return CheckResult(monitor_id=5, region=PUSH_REGION, status=CheckStatus.UP, checked_at_ms=at_ms)
    return CheckResult(
        monitor_id=5,
        region=PUSH_REGION,
        status=CheckStatus.DOWN,
        error_class=ErrorClass.REPORTED,
        error="the job reported a failure",
        checked_at_ms=at_ms,
    )


def fold(monitor: Monitor, state: MonitorState, result: CheckResult) -> Evaluation:
    return evaluate(state, result, monitor=monitor, regions=monitor.effective_regions(["eu", "us"]))


def run(monitor: Monitor, state: MonitorState, now_ms: int) -> Evaluation:
    return tick(state, monitor=monitor, regions=monitor.effective_regions(["eu", "us"]), now_ms=now_ms)


def test_a_heartbeat_has_one_region_and_thresholds_of_one_whatever_was_asked() -> None:
    monitor = Monitor.model_validate(
        {
            "id": 5,
            "owner_id": 1,
            "name": "backup",
            "kind": "heartbeat",
            "failure_threshold": 5,
            "success_threshold": 3,
            "regions": ["eu"],
            "quorum": 2,
        }
    )
    assert (monitor.failure_threshold, monitor.success_threshold, monitor.quorum) == (1, 1, None)
    assert monitor.effective_regions(["eu", "us"]) == [PUSH_REGION]
    assert not monitor.scheduled


def test_period_and_grace_go_down_once_at_the_deadline_and_up_on_the_next_ping() -> None:
    monitor = heartbeat(period="10m", grace="2m")
    state = fold(monitor, MonitorState(), ping(T0)).state  # the first ping: up, silently

    deadline = T0 + 12 * MINUTE
    assert deadline_ms(state, monitor) == deadline
    assert next_wake_ms(state, monitor) == deadline + SETTLE_MS
    assert not run(monitor, state, deadline).accepted  # a ping sent just in time may still be on its way

    missed = run(monitor, state, deadline + SETTLE_MS)
    [change] = missed.changes
    assert change.kind is ChangeKind.DOWN and change.at_ms == deadline
    assert change.reason == "missed: no ping for 12m (expected every 10m, 2m grace)"
    [made] = missed.made
    assert (made.region, made.status, made.error_class, made.checked_at_ms) == (
        PUSH_REGION,
        CheckStatus.DOWN,
        ErrorClass.MISSED,
        deadline,
    )
    assert next_wake_ms(missed.state, monitor) is None  # down: nothing more to miss
    assert not run(monitor, missed.state, deadline + 60 * MINUTE).accepted  # never a second miss

    back = fold(monitor, missed.state, ping(deadline + 5 * MINUTE))
    [up] = back.changes
    assert up.kind is ChangeKind.UP and up.downtime_s == 5 * 60
    assert deadline_ms(back.state, monitor) == deadline + 5 * MINUTE + 12 * MINUTE


def test_a_reported_failure_is_down_at_once_and_then_waits_for_a_good_ping() -> None:
    monitor = heartbeat(period="10m", grace="2m")
    state = fold(monitor, MonitorState(), ping(T0)).state

    failed = fold(monitor, state, ping(T0 + MINUTE, ok=False))

    [down] = failed.changes
    assert down.kind is ChangeKind.DOWN and down.reason == "reported: the job reported a failure"
    assert deadline_ms(failed.state, monitor) is None


def test_a_new_heartbeat_waits_for_its_first_ping() -> None:
    monitor = heartbeat(period="1m", grace="1m")
    assert next_wake_ms(MonitorState(), monitor) is None
    assert not run(monitor, MonitorState(), T0 + 10**9).accepted


def test_the_missed_result_and_its_event_are_the_same_whoever_fires_them_and_when() -> None:
    monitor = heartbeat(period="10m", grace="2m")
    state = fold(monitor, MonitorState(), ping(T0)).state

    early = run(monitor, state, T0 + 12 * MINUTE + SETTLE_MS)
    late = run(monitor, state, T0 + 90 * MINUTE)  # after a restart, or by the next owner of the partition

    assert early.made == late.made
    assert event_id_for(early.changes[0], monitor.id) == event_id_for(late.changes[0], monitor.id)


@pytest.mark.parametrize(
    ("cron", "zone", "last_ping", "due"),
    [
        # Every day at 03:00 in Berlin: 02:00 UTC in winter.
        ("0 3 * * *", "Europe/Berlin", "2027-01-15T08:00:00+00:00", "2027-01-16T03:00:00+01:00"),
        # A ping at 02:59 Berlin time is due again at 03:00 the same night.
        ("0 3 * * *", "Europe/Berlin", "2027-01-15T01:59:00+00:00", "2027-01-15T03:00:00+01:00"),
        # 02:30 does not exist on the night clocks go forward: the run is at 03:00 summer time.
        ("30 2 * * *", "Europe/Berlin", "2027-03-27T12:00:00+00:00", "2027-03-28T03:00:00+02:00"),
        # Weekdays at 09:00 in Tokyo; a Friday ping is next due on Monday.
        ("0 9 * * 1-5", "Asia/Tokyo", "2027-01-15T01:00:00+00:00", "2027-01-18T09:00:00+09:00"),
    ],
)
def test_a_cron_schedule_in_a_time_zone(cron: str, zone: str, last_ping: str, due: str) -> None:
    options = HeartbeatOptions(cron=cron, timezone=zone, grace="30m")
    last_ms = int(datetime.fromisoformat(last_ping).timestamp() * 1000)

    expected = int(datetime.fromisoformat(due).timestamp() * 1000)
    assert options.expected_after_ms(last_ms) == expected
    assert options.deadline_ms(last_ms) == expected + 30 * MINUTE
    assert datetime.fromtimestamp(expected / 1000, ZoneInfo(zone)).isoformat() == due


def test_a_cron_heartbeat_goes_down_once_when_its_run_is_missed() -> None:
    monitor = heartbeat(cron="0 3 * * *", timezone="Europe/Berlin", grace="1h")
    state = fold(monitor, MonitorState(), ping(T0)).state  # 2027-01-15 09:00 Berlin

    due = int(datetime.fromisoformat("2027-01-16T04:00:00+01:00").timestamp() * 1000)  # 03:00 + 1 h grace
    missed = run(monitor, state, due + SETTLE_MS)

    [change] = missed.changes
    assert change.kind is ChangeKind.DOWN and change.at_ms == due
    assert change.reason.endswith("(expected 0 3 * * * (Europe/Berlin), 1h grace)")
    assert not run(monitor, missed.state, due + 10 * 60 * MINUTE).accepted


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "61 * * * *"}, "not a cron expression"),
        ({"cron": "0 0 30 2 *"}, "not a cron expression: Bad day-of-month"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"period": "0s"}, "must be from 1 s to 366 days"),
        ({"grace": "400d"}, "must be from 1 s to 366 days"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HeartbeatOptions.model_validate(options)
