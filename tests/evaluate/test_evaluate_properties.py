"""Invariants of the state machine over random result sequences (fixed seeds, no extra dependencies)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest

from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.evaluate.state import (
    ChangeKind,
    MonitorState,
    MonitorStatus,
    StateChange,
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
    monitor: Monitor, regions: list[str], steps: list[Step], *, checked: bool = True
) -> list[tuple[MonitorState, tuple[StateChange, ...]]]:
    """The state after each step and the changes it made, checking each step's invariants."""
    state = MonitorState()
    trace: list[tuple[MonitorState, tuple[StateChange, ...]]] = []
    next_incident = 1
    for step in steps:
        # The timer fires before the result: what is due by then is due whatever the result says.
        before = state
        timer = tick(state, monitor=monitor, regions=regions, now_ms=step.now_ms)
        if checked:
            check_tick(monitor, step, before, timer.state, timer.changes, timer.accepted)
        state = timer.state
        before = state
        outcome = evaluate(state, step.result, monitor=monitor, regions=regions)
        if checked:
            check_step(monitor, regions, step, before, outcome.state, outcome.changes, outcome.accepted)
        state = outcome.state
        for change in outcome.changes:
            if change.opens_incident:  # what the evaluator does once the store has the incident
                state = attach_incident_id(state, next_incident, opened_at_ms=change.incident_opened_at_ms)
                next_incident += 1
        trace.append((state, timer.changes + outcome.changes))
    return trace


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
    (change,) = changes
    assert change.kind is ChangeKind.REMINDER and change.at_ms == step.now_ms and change.region is None
    assert before.status is MonitorStatus.DOWN and after.status is MonitorStatus.DOWN
    assert monitor.repeat_interval is not None and before.incident is not None
    since = before.last_reminder_at_ms or before.incident.opened_at_ms
    assert step.now_ms - since >= monitor.repeat_interval * 1000
    assert after.last_reminder_at_ms == step.now_ms
    assert change.sequence == after.reminders == before.reminders + 1


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

    down = False  # DOWN and UP alternate, starting with DOWN
    flagged = False  # SLOW only again after the flag cleared
    for state, changes in trace:
        for change in changes:
            if change.kind is ChangeKind.DOWN:
                assert not down
                down = True
            elif change.kind is ChangeKind.UP:
                assert down
                down = False
            elif change.kind is ChangeKind.REMINDER:
                assert down
            elif change.kind is ChangeKind.SLOW:
                assert not down and not flagged
                flagged = True
        assert down == (state.status is MonitorStatus.DOWN)
        flagged = flagged and state.slow

    # The same results give the same changes: evaluation depends on nothing else.
    assert play(monitor, regions, steps, checked=False) == trace


def test_the_seeds_exercise_every_kind_of_change() -> None:
    kinds = {change.kind for seed in SEEDS for _, changes in play(*scenario(seed), checked=False) for change in changes}
    assert kinds == set(ChangeKind)
