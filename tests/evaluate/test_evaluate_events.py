"""From state changes to the events published on ``website.events``."""

from __future__ import annotations

import uuid

import pytest

from uptimed.evaluate.events import LATE_AFTER_MS, event_for, event_id_for
from uptimed.evaluate.state import ChangeKind, StateChange
from uptimed.event import EventType, MonitorEvent
from uptimed.monitor import Monitor

T0 = 1_700_000_000_000
MONITOR = Monitor(id=42, owner_id=7, name="shop", target="https://shop.example/health")


def change(kind: ChangeKind, **fields: object) -> StateChange:
    base: dict[str, object] = {
        "kind": kind,
        "at_ms": T0,
        "reason": "status: HTTP 500",
        "regions": {"eu": "down", "us": "down"},
        "region": "eu",
        "checked_at_ms": T0 - 700,
        "response_time_ms": 321.0,
    }
    return StateChange(**(base | fields))  # type: ignore[arg-type]


def test_down_event() -> None:
    down = change(ChangeKind.DOWN, incident_opened_at_ms=T0)
    event = event_for(down, MONITOR, T0 + 5, 900)
    assert event.type is EventType.DOWN
    assert (event.websiteId, event.userId, event.url, event.name) == (42, 7, "https://shop.example/health", "shop")
    # timestamp: when it happened (the change's time); detectedAt: when uptimed decided it
    assert (event.responseTime, event.regionId, event.timestamp, event.detectedAt) == (321.0, "eu", T0, T0 + 5)
    assert event.lateReason is None and event.late_by_s is None
    assert (event.incidentId, event.reason, event.regions) == (900, "status: HTTP 500", {"eu": "down", "us": "down"})
    assert event.reminder is False and event.downtimeSeconds is None
    assert event.eventId == event_id_for(down, 42)


def test_an_event_decided_late_says_so_and_why() -> None:
    down = change(ChangeKind.DOWN, incident_opened_at_ms=T0)
    on_time = event_for(down, MONITOR, T0 + LATE_AFTER_MS)
    assert on_time.lateReason is None
    late = event_for(down, MONITOR, T0 + 40_000, late_reason="the message bus was unavailable")
    assert (late.timestamp, late.detectedAt, late.late_by_s) == (T0, T0 + 40_000, 40.0)
    assert late.lateReason == "the message bus was unavailable"
    assert event_for(down, MONITOR, T0 + 40_000).lateReason == "uptimed was catching up"
    assert event_for(down, MONITOR, T0 + 40_000).eventId == on_time.eventId  # the same change whenever decided


def test_the_nth_reminder_of_an_incident_has_one_id_whoever_fires_it_and_when() -> None:
    def reminder(at: int, sequence: int, opened: int = T0 - 600_000) -> StateChange:
        return change(
            ChangeKind.REMINDER,
            at_ms=at,
            region=None,
            checked_at_ms=None,
            sequence=sequence,
            incident_opened_at_ms=opened,
        )

    assert event_id_for(reminder(T0, 1), 42) == event_id_for(reminder(T0 + 700, 1), 42)
    assert event_id_for(reminder(T0, 1), 42) != event_id_for(reminder(T0, 2), 42)
    assert event_id_for(reminder(T0, 1), 42) != event_id_for(reminder(T0, 1, opened=T0 - 1), 42)


def test_up_event_carries_downtime_and_the_incident_of_the_change() -> None:
    up = change(ChangeKind.UP, regions={"eu": "up"}, incident_id=900, downtime_s=3600.5, reason="up again in eu")
    event = event_for(up, MONITOR, T0)
    assert event.type is EventType.UP
    assert (event.incidentId, event.downtimeSeconds, event.reason) == (900, 3600.5, "up again in eu")
    assert event_for(up, MONITOR, T0, 901).incidentId == 901


def test_reminder_is_a_down_event_marked_reminder() -> None:
    reminder = change(ChangeKind.REMINDER, incident_id=900, reason="still down for 20 min: x")
    event = event_for(reminder, MONITOR, T0)
    assert event.type is EventType.DOWN and event.reminder is True and event.incidentId == 900


def test_slow_event() -> None:
    event = event_for(change(ChangeKind.SLOW, regions={"eu": "up"}, response_time_ms=4000.0), MONITOR, T0)
    assert event.type is EventType.SLOW
    assert (event.responseTime, event.incidentId, event.reminder, event.downtimeSeconds) == (4000.0, None, False, None)


def test_timer_reminder_has_no_region() -> None:
    reminder = change(ChangeKind.REMINDER, region=None, checked_at_ms=None, response_time_ms=None)
    event = event_for(reminder, MONITOR, T0)
    assert event.regionId is None and event.responseTime is None
    assert event.eventId == event_id_for(reminder, 42)


def test_event_ids_are_stable_and_distinct() -> None:
    down = change(ChangeKind.DOWN)
    assert event_id_for(down, 42) == event_id_for(change(ChangeKind.DOWN, at_ms=T0 + 99_000), 42)  # a replay
    others = [
        event_id_for(change(ChangeKind.UP), 42),
        event_id_for(change(ChangeKind.REMINDER), 42),
        event_id_for(down, 43),
        event_id_for(change(ChangeKind.DOWN, region="us"), 42),
        event_id_for(change(ChangeKind.DOWN, checked_at_ms=T0 - 699), 42),
        event_id_for(change(ChangeKind.REMINDER, region=None, checked_at_ms=None), 42),
    ]
    assert len({event_id_for(down, 42), *others}) == 1 + len(others)
    assert event_id_for(down, 42).version == 5


def test_explicit_event_id() -> None:
    chosen = uuid.uuid4()
    assert event_for(change(ChangeKind.DOWN), MONITOR, T0, event_id=chosen).eventId == chosen


@pytest.mark.parametrize("kind", list(ChangeKind))
def test_events_survive_the_wire(kind: ChangeKind) -> None:
    event = event_for(change(kind, incident_id=5, downtime_s=1.0), MONITOR, T0)
    assert MonitorEvent.model_validate_json(event.model_dump_json()) == event
