"""Escalation and acknowledgement in the state machine, over plain data: no services, no clock."""

from __future__ import annotations

import json
from typing import Any

from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.evaluate.escalation import Acknowledgement, Policy, Step
from uptimed.evaluate.events import event_for, event_id_for
from uptimed.evaluate.state import (
    ChangeKind,
    Evaluation,
    MonitorState,
    acknowledge,
    attach_incident_id,
    evaluate,
    next_wake_ms,
    tick,
)
from uptimed.event import EventType
from uptimed.monitor import Monitor

T0 = 1_700_000_000_000
THREE_STEPS = Policy(
    id=9,
    name="ops",
    steps=(Step(0, (1,), "on call"), Step(5_000, (2, 3)), Step(10_000, (4,), "lead")),
)


def monitor(**fields: Any) -> Monitor:
    return Monitor(
        id=42,
        owner_id=7,
        name="shop",
        target="https://shop.example/",
        failure_threshold=1,
        success_threshold=1,
        **fields,
    )


def failed(at: int) -> CheckResult:
    return CheckResult(
        monitor_id=42,
        region="a",
        status=CheckStatus.DOWN,
        error_class=ErrorClass.STATUS,
        error="HTTP 500",
        checked_at_ms=at,
    )


def ok(at: int) -> CheckResult:
    return CheckResult(monitor_id=42, region="a", status=CheckStatus.UP, response_time_ms=10.0, checked_at_ms=at)


def down(policy: Policy | None = THREE_STEPS, **fields: Any) -> tuple[Monitor, Evaluation]:
    m = monitor(**fields)
    outcome = evaluate(MonitorState(), failed(T0), monitor=m, regions=["a"], policy=policy)
    return m, Evaluation(attach_incident_id(outcome.state, 5), outcome.changes)


def roundtrip(state: MonitorState) -> MonitorState:
    return MonitorState.from_json(json.loads(json.dumps(state.to_json())))


def test_the_first_step_goes_with_the_down_change_the_others_at_their_times() -> None:
    m, opened = down()
    (change,) = opened.changes
    assert change.kind is ChangeKind.DOWN and change.audience == (1,)
    assert change.step is not None and (change.step.number, change.step.of, change.step.name) == (1, 3, "on call")
    state = opened.state
    assert next_wake_ms(state, m) == T0 + 5_000
    assert not tick(state, monitor=m, regions=["a"], now_ms=T0 + 4_999).accepted

    second = tick(state, monitor=m, regions=["a"], now_ms=T0 + 5_000)
    (step,) = second.changes
    assert step.kind is ChangeKind.ESCALATED and step.audience == (2, 3) and step.sequence == 2
    assert step.incident_id == 5 and step.incident_opened_at_ms == T0
    assert step.reason == "still down for 5s, escalated to step 2 of 3: status: HTTP 500"
    assert roundtrip(second.state) == second.state
    assert next_wake_ms(second.state, m) == T0 + 10_000

    third = tick(second.state, monitor=m, regions=["a"], now_ms=T0 + 10_200)
    (last,) = third.changes
    assert last.audience == (4,) and last.reason.endswith("escalated to step 3 of 3 (lead): status: HTTP 500")
    assert next_wake_ms(third.state, m) is None  # no repeat: nothing more

    recovered = evaluate(third.state, ok(T0 + 20_000), monitor=m, regions=["a"], policy=THREE_STEPS)
    (up,) = recovered.changes
    assert up.kind is ChangeKind.UP and up.audience == (1, 2, 3, 4)  # everyone reached
    assert recovered.state.escalation is None


def test_steps_missed_while_nobody_owned_the_monitor_all_go_out_in_order() -> None:
    m, opened = down()
    late = tick(opened.state, monitor=m, regions=["a"], now_ms=T0 + 30_000)
    assert [c.sequence for c in late.changes] == [2, 3]
    assert [event_id_for(c, 42) for c in late.changes] == [
        event_id_for(c, 42) for c in tick(opened.state, monitor=m, regions=["a"], now_ms=T0 + 99_000).changes
    ]


def test_the_last_step_repeats_until_acknowledged() -> None:
    policy = Policy(id=1, name="p", steps=(Step(0, (1,)), Step(5_000, (2,))), repeat_ms=60_000)
    m, opened = down(policy)
    state = tick(opened.state, monitor=m, regions=["a"], now_ms=T0 + 5_000).state
    assert next_wake_ms(state, m) == T0 + 65_000
    first = tick(state, monitor=m, regions=["a"], now_ms=T0 + 65_000)
    (repeat,) = first.changes
    assert repeat.step is not None and (repeat.step.number, repeat.step.repeat) == (2, 1) and repeat.audience == (2,)
    assert repeat.reason.endswith("escalated to step 2 of 2, repeated: status: HTTP 500")
    # three repeats missed: the latest goes out once, the next keeps its own time
    late = tick(first.state, monitor=m, regions=["a"], now_ms=T0 + 250_000)
    (once,) = late.changes
    assert once.step is not None and once.step.repeat == 4
    assert next_wake_ms(late.state, m) == T0 + 5_000 + 5 * 60_000
    ids = {event_id_for(c, 42) for c in (repeat, once)}
    assert len(ids) == 2

    acked = acknowledge(late.state, Acknowledgement(T0 + 260_000, "alice", "link"), regions=["a"], now_ms=T0 + 260_000)
    assert next_wake_ms(acked.state, m) is None
    assert not tick(acked.state, monitor=m, regions=["a"], now_ms=T0 + 10**7).accepted


def test_acknowledging_stops_steps_and_reminders_and_tells_everyone_reached() -> None:
    m, opened = down(repeat_interval=3)
    second = tick(opened.state, monitor=m, regions=["a"], now_ms=T0 + 5_000)
    assert [c.kind for c in second.changes] == [ChangeKind.REMINDER, ChangeKind.ESCALATED]
    (reminder, _) = second.changes
    assert reminder.audience == (1,)  # a reminder goes to whoever heard of the incident so far

    ack = Acknowledgement(T0 + 6_000, "alice", "page")
    acked = acknowledge(second.state, ack, regions=["a"], now_ms=T0 + 6_000)
    (change,) = acked.changes
    assert change.kind is ChangeKind.ACKNOWLEDGED and change.audience == (1, 2, 3)
    assert change.reason == "acknowledged by alice on its page" and change.at_ms == T0 + 6_000
    assert change.acknowledgement == ack and change.incident_id == 5
    assert next_wake_ms(acked.state, m) is None
    assert not tick(acked.state, monitor=m, regions=["a"], now_ms=T0 + 60_000).accepted
    # the same acknowledgement again changes nothing
    assert not acknowledge(acked.state, ack, regions=["a"], now_ms=T0 + 7_000).accepted
    assert roundtrip(acked.state) == acked.state

    event = event_for(change, m, T0 + 6_100)
    assert event.type is EventType.ACKNOWLEDGED and event.integrationIds == [1, 2, 3]
    assert (event.acknowledgedBy, event.acknowledgedVia) == ("alice", "page")

    # withdrawn: silently, and what is overdue goes out at the next tick
    withdrawn = acknowledge(acked.state, None, regions=["a"], now_ms=T0 + 20_000)
    assert withdrawn.accepted and withdrawn.changes == ()
    resumed = tick(withdrawn.state, monitor=m, regions=["a"], now_ms=T0 + 20_000)
    assert [c.kind for c in resumed.changes] == [ChangeKind.REMINDER, ChangeKind.ESCALATED]

    recovered = evaluate(acked.state, ok(T0 + 30_000), monitor=m, regions=["a"])
    assert recovered.changes[0].audience == (1, 2, 3)  # acknowledged or not, everyone reached hears it is over


def test_without_a_policy_everything_goes_to_the_routed_integrations_and_acknowledging_stops_reminders() -> None:
    m, opened = down(None, repeat_interval=60)
    (change,) = opened.changes
    assert change.audience is None and change.step is None
    assert next_wake_ms(opened.state, m) == T0 + 60_000
    acked = acknowledge(opened.state, Acknowledgement(T0 + 1_000, "bob", "api"), regions=["a"], now_ms=T0 + 1_000)
    assert acked.changes[0].audience is None
    assert acked.changes[0].reason == "acknowledged by bob through the API"
    assert next_wake_ms(acked.state, m) is None


def test_a_first_step_that_waits_leaves_the_down_change_for_nobody() -> None:
    policy = Policy(id=1, name="p", steps=(Step(120_000, (1,)),))
    m, opened = down(policy)
    assert opened.changes[0].audience == () and opened.changes[0].step is None
    assert next_wake_ms(opened.state, m) == T0 + 120_000
    # up before the step: nobody heard of it, nobody hears of the recovery
    recovered = evaluate(opened.state, ok(T0 + 60_000), monitor=m, regions=["a"], policy=policy)
    assert recovered.changes[0].audience == ()


def test_acknowledging_needs_an_open_incident() -> None:
    m = monitor()
    assert not acknowledge(MonitorState(), Acknowledgement(T0, "a", "api"), regions=["a"], now_ms=T0).accepted
    _, opened = down()
    recovered = evaluate(opened.state, ok(T0 + 1), monitor=m, regions=["a"])
    assert not acknowledge(recovered.state, Acknowledgement(T0, "a", "api"), regions=["a"], now_ms=T0).accepted


def test_each_step_and_acknowledgement_of_an_incident_has_one_event_id() -> None:
    m, opened = down()
    a = tick(opened.state, monitor=m, regions=["a"], now_ms=T0 + 5_000).changes[0]
    b = tick(opened.state, monitor=m, regions=["a"], now_ms=T0 + 5_900).changes[0]  # another process, later
    assert event_id_for(a, 42) == event_id_for(b, 42)
    ack = Acknowledgement(T0 + 6_000, "alice", "page")
    one = acknowledge(opened.state, ack, regions=["a"], now_ms=T0 + 6_000).changes[0]
    two = acknowledge(opened.state, ack, regions=["a"], now_ms=T0 + 9_000).changes[0]
    assert event_id_for(one, 42) == event_id_for(two, 42) != event_id_for(a, 42)
    event = event_for(a, m, T0 + 5_000)
    assert event.type is EventType.ESCALATED and event.integrationIds == [2, 3] and event.incidentId == 5
    assert event.escalation is not None and (event.escalation.step, event.escalation.steps) == (2, 3)
    assert event.escalation.afterSeconds == 5.0 and event.escalation.policy == "ops"
