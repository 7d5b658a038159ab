"""Invariants of the state machine over random result sequences (fixed seeds, no extra dependencies).

Half the scenarios give the monitor an escalation policy, and someone
acknowledges now and then (a random stream of its own, so the results of a
seed are the same with or without it).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest

from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.evaluate.escalation import Acknowledgement, Policy
from uptimed.evaluate.escalation import Step as PolicyStep
from uptimed.evaluate.state import (
    ChangeKind,
    MonitorState,
    MonitorStatus,
    StateChange,
    acknowledge,
    attach_incident_id,
    evaluate,
    tick,
)
from uptimed.monitor import Monitor
from uptimed.rules.regions import quorum_for

T0 = 1_700_000_000_000


@dataclass
class Step:
    result: CheckResult
    now_ms: int
    ack: bool = False
    """Someone acknowledges the open incident (if any) just before this step's timer."""


def policy_for(seed: int) -> Policy | None:
    rng = random.Random(seed + 10_000)
    if rng.random() < 0.5:
        return None
    delays = sorted(rng.sample(range(0, 900_000, 30_000), rng.randint(1, 3)))
    steps = tuple(PolicyStep(after, tuple(sorted(rng.sample(range(1, 8), rng.randint(1, 3))))) for after in delays)
    return Policy(id=1, name="p", steps=steps, repeat_ms=rng.choice([None, 120_000, 600_000]))


def with_acks(seed: int, steps: list[Step]) -> list[Step]:
    rng = random.Random(seed + 20_000)
    return [Step(s.result, s.now_ms, ack=rng.random() < 0.03) for s in steps]


def scenario(seed: int) -> tuple[Monitor, list[str], list[Step]]:
    rng = random.Random(seed)
    regions = rng.sample(["a", "b", "c", "d"], rng.randint(1, 4))
    quorum = rng.choice([None, None, *range(1, len(regions) + 1)])
    monitor = Monitor(
        id=1,
        owner_id=1,
        name="m",
        target="https://m.example",
        regions=regions,
        failure_threshold=rng.randint(1, 4),
        success_threshold=rng.randint(1, 4),
        quorum=quorum,
        slow_threshold_ms=rng.choice([None, 1000]),
        repeat_interval=rng.choice([None, 60, 300]),
    )
    # Long runs of one outcome make transitions likely; a failure rate per phase.
    steps: list[Step] = []
    last_at: dict[str, int] = {}
    clock = T0
    fail_rate = rng.random()
    for _ in range(400):
        if rng.random() < 0.05:
            fail_rate = rng.random()
        clock += rng.randint(1_000, 90_000)
        region = rng.choice([*regions, "elsewhere"]) if rng.random() < 0.05 else rng.choice(regions)
        at = clock
        if region in last_at and rng.random() < 0.05:
            at = last_at[region] - rng.randint(0, 1)  # a redelivery or a straggler
        last_at[region] = max(at, last_at.get(region, at))
        if rng.random() < fail_rate:
            result = CheckResult(
                monitor_id=1,
                region=region,
                status=CheckStatus.DOWN,
                error_class=ErrorClass.CONNECT,
                error="refused",
                checked_at_ms=at,
            )
        else:
            result = CheckResult(
                monitor_id=1,
                region=region,
                status=CheckStatus.UP,
                response_time_ms=rng.choice([80.0, 1000.0, 4000.0]),
                checked_at_ms=at,
            )
        steps.append(Step(result, clock + rng.randint(0, 2_000)))
    return monitor, regions, steps


def play(
    monitor: Monitor,
    regions: list[str],
    steps: list[Step],
    *,
    checked: bool = True,
    policy: Policy | None = None,
) -> list[tuple[MonitorState, tuple[StateChange, ...]]]:
    """The state after each step and the changes it made, checking each step's invariants."""
    state = MonitorState()
    trace: list[tuple[MonitorState, tuple[StateChange, ...]]] = []
    next_incident = 1
    for step in steps:
        acked: tuple[StateChange, ...] = ()
        # As the store allows: only an incident nobody has acknowledged yet.
        if step.ack and not (state.escalation and state.escalation.acknowledged):
            ack = Acknowledgement(at_ms=step.now_ms, by="alice", via="page")
            outcome = acknowledge(state, ack, regions=regions, now_ms=step.now_ms)
            if checked:
                check_ack(state, outcome.state, outcome.changes, outcome.accepted)
            state, acked = outcome.state, outcome.changes
        # The timer fires before the result: what is due by then is due whatever the result says.
        before = state
        timer = tick(state, monitor=monitor, regions=regions, now_ms=step.now_ms)
        if checked:
            check_tick(monitor, step, before, timer.state, timer.changes, timer.accepted)
        state = timer.state
        before = state
        outcome = evaluate(state, step.result, monitor=monitor, regions=regions, policy=policy)
        if checked:
            check_step(monitor, regions, step, before, outcome.state, outcome.changes, outcome.accepted)
        state = outcome.state
        for change in outcome.changes:
            if change.opens_incident:  # what the evaluator does once the store has the incident
                state = attach_incident_id(state, next_incident, opened_at_ms=change.incident_opened_at_ms)
                next_incident += 1
        trace.append((state, acked + timer.changes + outcome.changes))
    return trace


def check_ack(before: MonitorState, after: MonitorState, changes: tuple[StateChange, ...], accepted: bool) -> None:
    if not accepted:
        assert after is before and changes == () and before.status is not MonitorStatus.DOWN
        return
    (change,) = changes
    assert change.kind is ChangeKind.ACKNOWLEDGED and before.status is MonitorStatus.DOWN
    assert after.escalation is not None and after.escalation.acknowledged is not None
    assert change.audience == after.escalation.audience


def check_tick(
    monitor: Monitor,
    step: Step,
    before: MonitorState,
    after: MonitorState,
    changes: tuple[StateChange, ...],
    accepted: bool,
) -> None:
    if not accepted:
        assert after is before and changes == ()
        return
    assert before.status is MonitorStatus.DOWN and after.status is MonitorStatus.DOWN
    assert before.incident is not None and before.escalation is not None
    assert before.escalation.acknowledged is None  # nothing goes out once someone took the incident
    reminders = [c for c in changes if c.kind is ChangeKind.REMINDER]
    steps = [c for c in changes if c.kind is ChangeKind.ESCALATED]
    assert len(reminders) + len(steps) == len(changes) and len(reminders) <= 1
    for change in changes:
        assert change.at_ms == step.now_ms and change.region is None
    for change in reminders:
        assert monitor.repeat_interval is not None
        since = before.last_reminder_at_ms or before.incident.opened_at_ms
        assert step.now_ms - since >= monitor.repeat_interval * 1000
        assert after.last_reminder_at_ms == step.now_ms
        assert change.sequence == after.reminders == before.reminders + 1
    for change in steps:
        policy = before.escalation.policy
        assert policy is not None and change.step is not None
        assert before.incident.opened_at_ms + change.step.after_ms <= step.now_ms
        assert change.audience == policy.steps[change.step.number - 1].integration_ids
    numbers = [(c.step.number, c.step.repeat) for c in steps if c.step]
    assert numbers == sorted(set(numbers))


def check_step(
    monitor: Monitor,
    regions: list[str],
    step: Step,
    before: MonitorState,
    after: MonitorState,
    changes: tuple[StateChange, ...],
    accepted: bool,
) -> None:
    assert MonitorState.from_json(json.loads(json.dumps(after.to_json()))) == after
    if not accepted:
        assert after is before and changes == ()
        return
    assert step.result.region in regions
    assert set(after.regions) <= set(regions)
    assert (after.status is MonitorStatus.DOWN) == (after.incident is not None)
    assert not after.slow or after.status is MonitorStatus.UP
    assert before.status is MonitorStatus.UNKNOWN or after.status is not MonitorStatus.UNKNOWN
    kinds = [change.kind for change in changes]
    assert len([k for k in kinds if k is not ChangeKind.SLOW]) <= 1
    assert kinds.count(ChangeKind.SLOW) <= 1
    live = [r for r in regions if r not in after.silent]
    assert step.result.region in live  # the region that just reported is never silent
    quorum = quorum_for(monitor, live)
    votes = [after.regions[r].verdict for r in after.regions if r in live]
    at = step.result.checked_at_ms
    for change in changes:
        assert change.at_ms == at and change.region == step.result.region  # the check's time, not the clock's
        assert change.kind is not ChangeKind.REMINDER  # reminders come from the timer only
        if change.kind is ChangeKind.DOWN:
            assert before.status is not MonitorStatus.DOWN and after.status is MonitorStatus.DOWN
            assert votes.count(CheckStatus.DOWN) >= quorum
            assert after.incident is not None and after.incident.opened_at_ms <= at
            assert after.incident.opened_at_ms == change.incident_opened_at_ms and after.reminders == 0
        elif change.kind is ChangeKind.UP:
            assert before.status is MonitorStatus.DOWN and after.status is MonitorStatus.UP
            assert votes.count(CheckStatus.UP) >= quorum > votes.count(CheckStatus.DOWN)
            assert before.incident is not None and change.downtime_s is not None
            assert 0 <= change.downtime_s <= (at - before.incident.opened_at_ms) / 1000
            assert change.incident_id == before.incident.id is not None
        elif change.kind is ChangeKind.SLOW:
            assert monitor.slow_threshold_ms is not None
            assert not before.slow or before.status is not MonitorStatus.UP
            assert after.slow and after.status is MonitorStatus.UP
    if before.status is MonitorStatus.UNKNOWN and after.status is MonitorStatus.UP:
        assert ChangeKind.UP not in kinds


SEEDS = range(150)


@pytest.mark.parametrize("seed", SEEDS)
def test_invariants(seed: int) -> None:
    monitor, regions, steps = scenario(seed)
    trace = play(monitor, regions, steps)

    policy = policy_for(seed)
    steps = with_acks(seed, steps)
    trace = play(monitor, regions, steps, policy=policy)

    down = False  # DOWN and UP alternate, starting with DOWN
    flagged = False  # SLOW only again after the flag cleared
    acknowledged = False  # nothing goes out for an incident after its acknowledgement, but its recovery
    reached: set[int] = set()  # integrations the incident's steps reached
    fired: set[tuple[int, int]] = set()  # each step (and repeat) once per incident
    for state, changes in trace:
        for change in changes:
            if change.kind is ChangeKind.DOWN:
                assert not down
                down, acknowledged, fired = True, False, set()
                reached = set(change.step.integration_ids) if change.step else set()
                assert change.audience == (None if policy is None else tuple(sorted(reached)))
            elif change.kind is ChangeKind.UP:
                assert down
                assert change.audience == (None if policy is None else tuple(sorted(reached)))
                down = False
            elif change.kind in (ChangeKind.REMINDER, ChangeKind.ESCALATED):
                assert down and not acknowledged
                if change.step is not None:
                    assert (change.step.number, change.step.repeat) not in fired
                    fired.add((change.step.number, change.step.repeat))
                    reached |= set(change.step.integration_ids)
            elif change.kind is ChangeKind.ACKNOWLEDGED:
                assert down and not acknowledged
                assert change.audience == (None if policy is None else tuple(sorted(reached)))
                acknowledged = True
            elif change.kind is ChangeKind.SLOW:
                assert not down and not flagged
                flagged = True
        assert down == (state.status is MonitorStatus.DOWN)
        flagged = flagged and state.slow

    # The same results give the same changes: evaluation depends on nothing else.
    assert play(monitor, regions, steps, checked=False, policy=policy) == trace


def test_the_seeds_exercise_every_kind_of_change() -> None:
    kinds: set[ChangeKind] = set()
    for seed in SEEDS:
        monitor, regions, steps = scenario(seed)
        trace = play(monitor, regions, with_acks(seed, steps), checked=False, policy=policy_for(seed))
        kinds |= {change.kind for _, changes in trace for change in changes}
    assert kinds == set(ChangeKind)
