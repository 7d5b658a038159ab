"""The evaluator's state machine over plain data: no services, no clock.

Scripts are written as tokens, one check result each, one minute apart:
``a-`` region a failed, ``a+`` region a up (100 ms), ``a~`` region a up but
slow (5000 ms), ``a=`` region a up at exactly the slow threshold (1000 ms).
Expected changes are written ``kind@index`` (index of the token).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.evaluate.state import (
    ChangeKind,
    Evaluation,
    Incident,
    MonitorState,
    MonitorStatus,
    RegionState,
    StateChange,
    attach_incident_id,
    due_reminder,
    evaluate,
    next_wake_ms,
    reporting_regions,
    silence_ms_for,
    tick,
)
from uptimed.monitor import Monitor
from uptimed.rules.regions import quorum_for

T0 = 1_700_000_000_000
STEP = 60_000
SLOW_MS = 1000
RESPONSE_TIMES = {"+": 100.0, "~": 5000.0, "=": float(SLOW_MS)}
NEVER_SILENT = 10**12
"""Scripts about thresholds and quorum keep every region counting (liveness has tests of its own)."""


def make_monitor(**fields: Any) -> Monitor:
    return Monitor(id=42, owner_id=7, name="shop", target="https://shop.example/health", **fields)


def check(
    region: str,
    ok: bool,
    *,
    at: int,
    response_time_ms: float | None = 100.0,
    error_class: ErrorClass | None = ErrorClass.STATUS,
    error: str | None = "HTTP 500",
) -> CheckResult:
    if ok:
        return CheckResult(
            monitor_id=42, region=region, status=CheckStatus.UP, response_time_ms=response_time_ms, checked_at_ms=at
        )
    return CheckResult(
        monitor_id=42,
        region=region,
        status=CheckStatus.DOWN,
        response_time_ms=response_time_ms,
        error_class=error_class,
        error=error,
        checked_at_ms=at,
    )


def roundtrip(state: MonitorState) -> MonitorState:
    return MonitorState.from_json(json.loads(json.dumps(state.to_json())))


class Run:
    """Feeds results to the machine, keeping the clock, and checks the JSON round-trip at every step."""

    def __init__(
        self,
        regions: tuple[str, ...] = ("a",),
        *,
        state: MonitorState | None = None,
        silence_ms: int = NEVER_SILENT,
        **fields: Any,
    ):
        self.monitor = make_monitor(**fields)
        self.regions = list(regions)
        self.silence_ms = silence_ms
        self.state = state or MonitorState()
        self.now = T0
        self.log: list[tuple[int, StateChange]] = []
        self.count = 0

    def feed(self, result: CheckResult, *, now: int | None = None) -> Evaluation:
        self.now = now if now is not None else result.checked_at_ms + 500
        outcome = evaluate(self.state, result, monitor=self.monitor, regions=self.regions, silence_ms=self.silence_ms)
        assert roundtrip(outcome.state) == outcome.state
        if not outcome.accepted:
            assert outcome.state is self.state and not outcome.changes
        self.state = outcome.state
        self.log.extend((self.count, change) for change in outcome.changes)
        self.count += 1
        return outcome

    def token(self, token: str, *, at: int | None = None) -> Evaluation:
        region, mark = token[:-1], token[-1]
        at = at if at is not None else T0 + (self.count + 1) * STEP
        if mark == "-":
            return self.feed(check(region, False, at=at))
        return self.feed(check(region, True, at=at, response_time_ms=RESPONSE_TIMES[mark]))

    def script(self, script: str) -> str:
        for token in script.split():
            self.token(token)
        return self.changes()

    def changes(self) -> str:
        return " ".join(f"{change.kind.value}@{index}" for index, change in self.log)


def run(script: str, regions: str = "a", *, silence_ms: int = NEVER_SILENT, **fields: Any) -> Run:
    machine = Run(tuple(regions), silence_ms=silence_ms, **fields)
    machine.script(script)
    return machine


def rep(text: str, times: int) -> str:
    return " ".join([text] * times)


# --- thresholds, one region ------------------------------------------------

SINGLE_REGION = [
    ("one below failure threshold", {}, "a- a-", ""),
    ("at failure threshold", {}, "a- a- a-", "down@2"),
    ("down emitted once", {}, rep("a-", 10), "down@2"),
    ("one below success threshold", {}, "a- a- a- a+", "down@2"),
    ("at success threshold", {}, "a- a- a- a+ a+", "down@2 up@4"),
    ("failure resets success streak", {}, "a- a- a- a+ a- a+ a+", "down@2 up@6"),
    ("success resets failure streak", {}, "a- a- a+ a- a- a+ a-", ""),
    ("flapping never alerts", {}, rep("a- a+", 20), ""),
    ("flapping while down never recovers", {}, "a- a- a- " + rep("a+ a-", 10), "down@2"),
    ("unknown to up is silent", {}, rep("a+", 5), ""),
    ("unknown to down", {}, "a+ a+ a- a- a-", "down@4"),
    ("failure threshold 1", {"failure_threshold": 1}, "a+ a- a- a+ a+", "down@1 up@4"),
    ("success threshold 1", {"success_threshold": 1}, "a- a- a- a+ a- a- a-", "down@2 up@3 down@6"),
    ("both thresholds 1", {"failure_threshold": 1, "success_threshold": 1}, "a- a+ a- a+", "down@0 up@1 down@2 up@3"),
    (
        "large thresholds",
        {"failure_threshold": 5, "success_threshold": 4},
        rep("a-", 5) + " " + rep("a+", 4),
        "down@4 up@8",
    ),
    ("down again after up", {}, "a- a- a- a+ a+ a- a- a-", "down@2 up@4 down@7"),
]


@pytest.mark.parametrize(
    ("fields", "script", "expected"), [c[1:] for c in SINGLE_REGION], ids=[c[0] for c in SINGLE_REGION]
)
def test_single_region(fields: dict[str, Any], script: str, expected: str) -> None:
    assert run(script, **fields).changes() == expected


def test_unknown_to_up_sets_status_without_change() -> None:
    machine = Run()
    machine.script("a+")
    assert machine.state.status is MonitorStatus.UNKNOWN
    machine.script("a+")
    assert machine.state.status is MonitorStatus.UP
    assert machine.log == []


# --- quorum over regions ---------------------------------------------------

QUORUM = [
    # two regions, default majority: both must agree
    ("2 of 2: one region failing is not enough", "ab", {}, rep("a-", 6), ""),
    ("2 of 2: both failing", "ab", {}, rep("a- b-", 3), "down@5"),
    ("2 of 2: failing at different times", "ab", {}, "a- a- a- a- b- b- b-", "down@6"),
    ("2 of 2: one region recovering is not enough", "ab", {}, rep("a- b-", 3) + " a+ a+ a+", "down@5"),
    ("2 of 2: both recover", "ab", {}, rep("a- b-", 3) + " a+ a+ b+ b+", "down@5 up@9"),
    ("2 of 2: a region never heard from blocks both", "ab", {}, rep("a-", 5) + " " + rep("a+", 5), ""),
    # quorum 1 of 2: any region decides down; up needs no region still failing
    ("1 of 2: one region failing", "ab", {"quorum": 1}, "a- a- a- b+ b+", "down@2"),
    ("1 of 2: recovery of the failing region", "ab", {"quorum": 1}, "a- a- a- b+ b+ a+ a+", "down@2 up@6"),
    (
        "1 of 2: a region recovering while another still fails",
        "ab",
        {"quorum": 1},
        "a- a- a- b- b- b- a+ a+ a+",
        "down@2",
    ),
    ("1 of 2: one success of the other is not enough", "ab", {"quorum": 1}, "a- a- a- b- b- b- a+ a+ b+", "down@2"),
    ("1 of 2: then the other recovers too", "ab", {"quorum": 1}, "a- a- a- b- b- b- a+ a+ b+ b+", "down@2 up@9"),
    ("1 of 2: healthy region first, then failure", "ab", {"quorum": 1}, "b+ b+ b+ a- a- a-", "down@5"),
    # three regions, default majority 2
    ("2 of 3: one region failing", "abc", {}, rep("a-", 6), ""),
    ("2 of 3: two regions failing", "abc", {}, "a- a- a- b- b- b-", "down@5"),
    ("2 of 3: interleaved, second region reaches threshold last", "abc", {}, "a- b- c+ a- b- c+ a- c+ b-", "down@8"),
    (
        "2 of 3: recover with majority while third still fails",
        "abc",
        {},
        "a- b- c+ a- b- c+ a- b- c+ a+ a+",
        "down@7 up@10",
    ),
    ("2 of 3: a half-recovered region still says down", "abc", {}, "a- a- a- a+ b- b- b-", "down@6"),
    ("2 of 3: a recovered region no longer says down", "abc", {}, "a- a- a- a+ a+ b- b- b-", ""),
    (
        "2 of 3: one failure does not take back a region's up",
        "abc",
        {},
        "c+ c+ a- b- a- b- a- b- c- a+ a+",
        "down@7 up@10",
    ),
    ("2 of 3: one recovered region is not a majority", "abc", {}, "a- b- a- b- a- b- a+ a+", "down@5"),
    ("2 of 3: all three failing emits once", "abc", {}, rep("a- b- c-", 4), "down@7"),
    # explicit quorum
    ("3 of 3: two failing is not enough", "abc", {"quorum": 3}, rep("a- b-", 4), ""),
    ("3 of 3: all failing", "abc", {"quorum": 3}, rep("a- b- c-", 3), "down@8"),
    (
        "3 of 3: up needs all three",
        "abc",
        {"quorum": 3},
        rep("a- b- c-", 3) + " " + rep("a+ b+", 3) + " c+ c+",
        "down@8 up@16",
    ),
    ("quorum above region count is capped", "ab", {"quorum": 5}, rep("a- b-", 3), "down@5"),
]


@pytest.mark.parametrize(
    ("regions", "fields", "script", "expected"), [c[1:] for c in QUORUM], ids=[c[0] for c in QUORUM]
)
def test_quorum(regions: str, fields: dict[str, Any], script: str, expected: str) -> None:
    assert run(script, regions, **fields).changes() == expected


@pytest.mark.parametrize(
    ("quorum", "regions", "expected"),
    [
        (None, [], 1),
        (None, ["a"], 1),
        (None, ["a", "b"], 2),
        (None, ["a", "b", "c"], 2),
        (None, ["a", "b", "c", "d"], 3),
        (None, ["a", "b", "c", "d", "e"], 3),
        (1, ["a", "b", "c"], 1),
        (3, ["a", "b", "c"], 3),
        (4, ["a", "b", "c"], 3),
        (2, ["a"], 1),
    ],
)
def test_quorum_for(quorum: int | None, regions: list[str], expected: int) -> None:
    monitor = make_monitor(quorum=quorum)
    assert quorum_for(monitor, regions) == expected


def test_result_from_unknown_region_is_ignored() -> None:
    machine = Run(("a", "b"))
    before = machine.state
    for _ in range(5):
        outcome = machine.token("z-")
        assert not outcome.accepted
        assert outcome.changes == ()
    assert machine.state is before


def test_unknown_region_ignored_while_down() -> None:
    machine = Run(("a",))
    machine.script(rep("a-", 3))
    state = machine.state
    outcome = machine.token("z+")
    assert not outcome.accepted and machine.state is state


def test_duplicate_and_stale_results_are_ignored() -> None:
    machine = Run(("a",))
    first = check("a", False, at=T0 + STEP)
    machine.feed(first)
    state = machine.state
    assert not machine.feed(first).accepted  # a redelivery
    assert not machine.feed(check("a", False, at=T0)).accepted  # older than the last one seen
    assert machine.state is state
    assert machine.state.regions["a"].consecutive_failures == 1


def test_replaying_results_gives_the_same_changes() -> None:
    results = [check("a", False, at=T0 + i * STEP) for i in range(1, 4)]
    monitor = make_monitor()
    state = MonitorState()
    first: list[StateChange] = []
    for result in results:
        outcome = evaluate(state, result, monitor=monitor, regions=["a"])
        state, first = outcome.state, first + list(outcome.changes)
    for result in results:  # all redeliveries: nothing happens twice
        assert evaluate(state, result, monitor=monitor, regions=["a"]) == Evaluation(state, accepted=False)
    assert [c.kind for c in first] == [ChangeKind.DOWN]


def test_per_region_clock_is_independent() -> None:
    machine = Run(("a", "b"))
    machine.feed(check("a", False, at=T0 + 10 * STEP))
    assert machine.feed(check("b", False, at=T0 + STEP)).accepted


def test_regions_dropped_from_the_monitor_are_forgotten() -> None:
    stale = RegionState(
        consecutive_failures=10, verdict=CheckStatus.DOWN, last_status=CheckStatus.DOWN, last_checked_at_ms=T0
    )
    machine = Run(("a", "b"), state=MonitorState(regions={"c": stale}))
    machine.script("a- a- a-")
    assert machine.changes() == ""  # c would have made a quorum of 2 with a
    assert set(machine.state.regions) == {"a"}


def test_region_state_records_last_check() -> None:
    machine = Run(("a",))
    machine.feed(check("a", False, at=T0 + 1, response_time_ms=None, error_class=ErrorClass.TIMEOUT, error="10 s"))
    region = machine.state.regions["a"]
    assert (region.last_status, region.last_checked_at_ms, region.last_response_time_ms) == (
        CheckStatus.DOWN,
        T0 + 1,
        None,
    )
    assert (region.last_error_class, region.last_error) == ("timeout", "10 s")
    machine.feed(check("a", True, at=T0 + 2, response_time_ms=87.5))
    region = machine.state.regions["a"]
    assert (region.last_status, region.last_checked_at_ms, region.last_response_time_ms) == (
        CheckStatus.UP,
        T0 + 2,
        87.5,
    )
    assert (region.consecutive_failures, region.consecutive_successes) == (0, 1)
    assert (region.last_error_class, region.last_error) == ("timeout", "10 s")  # the last error is kept


# --- incidents, causes, downtime -------------------------------------------


def test_down_opens_incident_and_up_resolves_it() -> None:
    machine = Run(("a",))
    first_failure = T0 + STEP
    machine.script("a- a-")
    third = machine.token("a-")
    down = third.changes[0]
    assert down.kind is ChangeKind.DOWN and down.opens_incident and not down.resolves_incident
    assert down.incident_id is None
    # It happened at the check that completed it; the incident dates from the first failed check.
    assert down.at_ms == down.checked_at_ms == T0 + 3 * STEP
    assert down.incident_opened_at_ms == first_failure
    assert machine.state.status is MonitorStatus.DOWN
    assert machine.state.incident == Incident(opened_at_ms=first_failure, cause="status: HTTP 500")
    assert machine.state.down_since_ms == first_failure

    machine.state = attach_incident_id(machine.state, 901, opened_at_ms=down.incident_opened_at_ms)
    assert machine.state.incident is not None and machine.state.incident.id == 901

    machine.token("a+", at=first_failure + 3_600_000)
    up = machine.token("a+", at=first_failure + 3_660_000).changes[0]
    assert up.kind is ChangeKind.UP and up.resolves_incident
    assert up.at_ms == first_failure + 3_660_000
    assert up.incident_id == 901 and up.incident_opened_at_ms == first_failure
    # from the first failed check to the first good one, whenever the results were evaluated
    assert up.downtime_s == 3600.0
    assert machine.state.incident is None and machine.state.status is MonitorStatus.UP


def test_times_come_from_the_checks_not_from_when_they_were_evaluated() -> None:
    on_time, late = Run(("a",)), Run(("a",))
    for i in range(1, 8):
        result = check("a", i not in (3, 4, 5), at=T0 + i * STEP)
        on_time.feed(result, now=result.checked_at_ms + 10)
        late.feed(result, now=T0 + 10 * STEP)  # a backlog evaluated at once
    assert on_time.log == late.log
    down, up = (change for _, change in late.log)
    assert (down.at_ms, down.incident_opened_at_ms) == (T0 + 5 * STEP, T0 + 3 * STEP)
    assert up.at_ms == T0 + 7 * STEP and up.downtime_s == 3 * STEP / 1000


def test_a_flap_inside_one_backlog_gives_each_change_its_own_time() -> None:
    machine = Run(("a",), failure_threshold=1, success_threshold=1)
    machine.script("a- a+ a- a+")
    assert [(c.kind.value, c.at_ms) for _, c in machine.log] == [
        ("down", T0 + STEP),
        ("up", T0 + 2 * STEP),
        ("down", T0 + 3 * STEP),
        ("up", T0 + 4 * STEP),
    ]
    assert [c.downtime_s for _, c in machine.log if c.kind is ChangeKind.UP] == [60.0, 60.0]


def test_quorum_down_dates_from_when_the_quorum_started_failing() -> None:
    machine = Run(("a", "b"))  # majority 2 of 2
    machine.script("a- a- b- a- b- b-")
    (down,) = (change for _, change in machine.log)
    assert down.at_ms == T0 + 6 * STEP  # b's third failure completed it
    assert down.incident_opened_at_ms == T0 + 3 * STEP  # b's first failure: from then on both failed


def test_up_without_attached_id_still_names_the_incident_by_time() -> None:
    machine = Run(("a",))
    machine.script("a- a- a- a+ a+")
    down, up = (change for _, change in machine.log)
    assert up.incident_id is None
    assert up.incident_opened_at_ms == down.incident_opened_at_ms


def test_attach_incident_id_guards() -> None:
    assert attach_incident_id(MonitorState(), 5) == MonitorState()
    state = MonitorState(status=MonitorStatus.DOWN, incident=Incident(opened_at_ms=T0, cause="x"))
    assert attach_incident_id(state, 5, opened_at_ms=T0 + 1) is state
    assert attach_incident_id(state, 5).incident == Incident(opened_at_ms=T0, cause="x", id=5)
    assert attach_incident_id(state, 5, opened_at_ms=T0).incident == Incident(opened_at_ms=T0, cause="x", id=5)


@pytest.mark.parametrize(
    ("errors", "cause"),
    [
        ({"a": (ErrorClass.STATUS, "HTTP 500")}, "status: HTTP 500"),
        ({"a": (ErrorClass.TIMEOUT, None)}, "timeout"),
        ({"a": (None, "boom")}, "boom"),
        ({"a": (None, None)}, "check failed"),
        ({"a": (ErrorClass.STATUS, "HTTP 500"), "b": (ErrorClass.STATUS, "HTTP 500")}, "status: HTTP 500"),
        (
            {"a": (ErrorClass.STATUS, "HTTP 500"), "b": (ErrorClass.DNS, "no such host")},
            "a: status: HTTP 500; b: dns: no such host",
        ),
    ],
)
def test_down_cause(errors: dict[str, tuple[ErrorClass | None, str | None]], cause: str) -> None:
    machine = Run(tuple(errors), quorum=len(errors))
    for _ in range(3):
        for region, (error_class, error) in errors.items():
            machine.feed(check(region, False, at=T0 + (machine.count + 1) * STEP, error_class=error_class, error=error))
    ((_, down),) = machine.log
    assert down.reason == cause
    assert machine.state.incident is not None and machine.state.incident.cause == cause


def test_change_carries_the_triggering_result_and_region_statuses() -> None:
    machine = Run(("a", "b", "c"))
    machine.script("c+ a- b- a- b- a-")
    machine.feed(check("b", False, at=T0 + 100 * STEP, response_time_ms=42.0))
    ((_, down),) = machine.log
    assert (down.region, down.checked_at_ms, down.response_time_ms) == ("b", T0 + 100 * STEP, 42.0)
    assert down.regions == {"a": "down", "b": "down", "c": "up"}


def test_region_statuses_leave_out_regions_not_heard_from() -> None:
    machine = Run(("a", "b"), quorum=1)
    machine.script("a- a- a-")
    assert machine.log[0][1].regions == {"a": "down"}


def test_down_clears_reminder_clock_and_slow_flag() -> None:
    state = MonitorState(status=MonitorStatus.UP, slow=True, last_reminder_at_ms=T0)
    machine = Run(("a",), state=state, slow_threshold_ms=SLOW_MS)
    machine.script("a- a- a-")
    assert machine.state.slow is False
    assert machine.state.last_reminder_at_ms is None


# --- slow ------------------------------------------------------------------

SLOW = [
    ("one below threshold count", "a", {}, "a~ a~", ""),
    ("at threshold count", "a", {}, "a~ a~ a~", "slow@2"),
    ("emitted once", "a", {}, rep("a~", 10), "slow@2"),
    ("exactly at the threshold is not slow", "a", {}, rep("a=", 10), ""),
    ("cleared silently, then emitted again", "a", {}, "a~ a~ a~ a+ a+ a~ a~ a~", "slow@2 slow@7"),
    ("one fast check does not clear", "a", {}, "a~ a~ a~ a+ a~ a~ a~", "slow@2"),
    ("a failure resets the slow streak", "a", {}, "a~ a~ a- a~ a~", ""),
    ("slow streak after a failure", "a", {}, "a~ a~ a- a~ a~ a~", "slow@5"),
    ("a failure does not clear the flag", "a", {}, "a~ a~ a~ a- a~ a~ a~", "slow@2"),
    ("not while down", "a", {"success_threshold": 5}, "a- a- a- a~ a~ a~ a~ a~", "down@2 up@7 slow@7"),
    (
        "down clears the flag; slow again after up",
        "a",
        {},
        "a~ a~ a~ a- a- a- a+ a+ a~ a~ a~",
        "slow@2 down@5 up@7 slow@10",
    ),
    ("slow right after recovering", "a", {}, "a- a- a- a~ a~ a~", "down@2 up@4 slow@5"),
    ("only once up, not while unknown", "a", {"success_threshold": 4}, "a~ a~ a~ a~", "slow@3"),
    ("needs a quorum of slow regions", "ab", {}, "a~ a~ a~ a~ b+ b+ b+", ""),
    ("quorum of slow regions", "ab", {}, "a~ a~ a~ b~ b~ b~", "slow@5"),
    (
        "clears with a quorum of fast regions",
        "ab",
        {},
        "a~ a~ a~ b~ b~ b~ a+ a+ b+ b+ a~ a~ a~ b~ b~ b~",
        "slow@5 slow@15",
    ),
    ("one fast region of two does not clear", "ab", {}, "a~ a~ a~ b~ b~ b~ a+ a+ a~ a~ a~ b~", "slow@5"),
    ("failure threshold 1", "a", {"failure_threshold": 1, "success_threshold": 1}, "a~ a+ a~", "slow@0 slow@2"),
    (
        "1 of 2: a fast region does not clear while another is slow",
        "ab",
        {"quorum": 1},
        "b+ b+ a~ a~ a~ b+ b+ a~ b+",
        "slow@4",
    ),
    ("1 of 2: clears once no region is slow", "ab", {"quorum": 1}, "b+ b+ a~ a~ a~ b+ a+ a~ a~ a~", "slow@4 slow@9"),
]


@pytest.mark.parametrize(("regions", "fields", "script", "expected"), [c[1:] for c in SLOW], ids=[c[0] for c in SLOW])
def test_slow(regions: str, fields: dict[str, Any], script: str, expected: str) -> None:
    assert run(script, regions, slow_threshold_ms=SLOW_MS, **fields).changes() == expected


def test_slow_flag_and_change() -> None:
    machine = Run(("a",), slow_threshold_ms=SLOW_MS)
    machine.script("a~ a~ a~")
    ((_, slow),) = machine.log
    assert slow.kind is ChangeKind.SLOW and not slow.opens_incident
    assert slow.response_time_ms == 5000.0
    assert slow.reason == "slower than 1000 ms: a 5000 ms"
    assert slow.incident_id is None and slow.downtime_s is None
    assert machine.state.slow and machine.state.status is MonitorStatus.UP
    machine.script("a+ a+")
    assert not machine.state.slow


def test_no_slow_threshold_means_never_slow() -> None:
    assert run(rep("a~", 10)).changes() == ""


def test_removing_the_slow_threshold_clears_the_flag() -> None:
    machine = Run(("a",), state=MonitorState(status=MonitorStatus.UP, slow=True))
    machine.script("a~")
    assert not machine.state.slow and machine.log == []


def test_slow_needs_a_response_time() -> None:
    machine = Run(("a",), slow_threshold_ms=SLOW_MS)
    for i in range(5):
        machine.feed(check("a", True, at=T0 + i, response_time_ms=None))
    assert machine.log == [] and not machine.state.slow


# --- reminders (timer-driven) ----------------------------------------------

REPEAT_S = 300
REPEAT_MS = REPEAT_S * 1000


def down_machine(**fields: Any) -> tuple[Run, int]:
    """A monitor that just went down; returns it and the time its incident started."""
    machine = Run(("a",), repeat_interval=REPEAT_S, **fields)
    machine.script("a- a- a-")
    assert machine.changes() == "down@2"
    assert machine.state.down_since_ms is not None
    return machine, machine.state.down_since_ms


def kinds(outcome: Evaluation) -> list[ChangeKind]:
    return [change.kind for change in outcome.changes]


def tick_at(machine: Run, now: int) -> Evaluation:
    outcome = tick(machine.state, monitor=machine.monitor, regions=machine.regions, now_ms=now)
    assert roundtrip(outcome.state) == outcome.state
    if outcome.accepted:
        machine.state = outcome.state
    else:
        assert outcome.state is machine.state and not outcome.changes
    return outcome


def test_results_never_remind() -> None:
    assert run(rep("a-", 18), repeat_interval=REPEAT_S).changes() == "down@2"


def test_reminder_every_interval_from_the_timer() -> None:
    machine, down_at = down_machine()
    assert next_wake_ms(machine.state, machine.monitor) == down_at + REPEAT_MS
    assert kinds(tick_at(machine, down_at + REPEAT_MS - 1)) == []
    first = tick_at(machine, down_at + REPEAT_MS)
    assert kinds(first) == [ChangeKind.REMINDER] and first.changes[0].sequence == 1
    assert machine.state.last_reminder_at_ms == down_at + REPEAT_MS and machine.state.reminders == 1
    # the next one counts from this reminder
    assert next_wake_ms(machine.state, machine.monitor) == down_at + 2 * REPEAT_MS
    assert kinds(tick_at(machine, down_at + 2 * REPEAT_MS - 1)) == []
    second = tick_at(machine, down_at + 2 * REPEAT_MS)
    assert kinds(second) == [ChangeKind.REMINDER] and second.changes[0].sequence == 2


def test_several_intervals_skipped_give_one_reminder() -> None:
    machine, down_at = down_machine()
    late = down_at + 10 * REPEAT_MS + 123
    assert kinds(tick_at(machine, late)) == [ChangeKind.REMINDER]
    assert kinds(tick_at(machine, late + 1)) == []
    assert kinds(tick_at(machine, late + REPEAT_MS - 1)) == []
    assert kinds(tick_at(machine, late + REPEAT_MS)) == [ChangeKind.REMINDER]


def test_reminder_fields() -> None:
    machine, down_at = down_machine()
    machine.state = attach_incident_id(machine.state, 77)
    (reminder,) = tick_at(machine, down_at + 20 * 60_000).changes
    assert reminder.incident_id == 77 and reminder.incident_opened_at_ms == down_at
    assert reminder.reason == "still down for 20m: status: HTTP 500"
    assert reminder.at_ms == down_at + 20 * 60_000
    assert reminder.region is None and reminder.checked_at_ms is None and reminder.regions == {"a": "down"}
    assert not reminder.opens_incident and not reminder.resolves_incident


def test_reminders_stop_on_up() -> None:
    machine, down_at = down_machine()
    tick_at(machine, down_at + REPEAT_MS)
    machine.token("a+")
    machine.token("a+")
    assert machine.state.status is MonitorStatus.UP
    assert machine.state.last_reminder_at_ms is None and machine.state.reminders == 0
    assert next_wake_ms(machine.state, machine.monitor) is None
    assert kinds(tick_at(machine, down_at + 10 * REPEAT_MS)) == []


def test_reminders_count_from_a_new_down() -> None:
    machine, _ = down_machine()
    tick_at(machine, machine.state.down_since_ms + REPEAT_MS)  # type: ignore[operator]
    machine.script("a+ a+ a- a- a-")
    assert machine.changes() == "down@2 up@4 down@7"
    second_down = machine.state.down_since_ms
    assert second_down is not None and machine.state.reminders == 0
    assert not due_reminder(machine.state, machine.monitor, second_down + REPEAT_MS - 1)
    assert due_reminder(machine.state, machine.monitor, second_down + REPEAT_MS)
    assert tick_at(machine, second_down + REPEAT_MS).changes[0].sequence == 1


def test_no_reminders_without_repeat_interval() -> None:
    machine = Run(("a",))
    machine.script("a- a- a-")
    assert next_wake_ms(machine.state, machine.monitor) is None
    assert kinds(tick_at(machine, T0 + 1000 * STEP)) == []


def test_due_reminder() -> None:
    monitor = make_monitor(repeat_interval=REPEAT_S)
    down = MonitorState(status=MonitorStatus.DOWN, incident=Incident(opened_at_ms=T0, cause="x"))
    assert not due_reminder(down, monitor, T0 + REPEAT_MS - 1)
    assert due_reminder(down, monitor, T0 + REPEAT_MS)
    reminded = replace(down, last_reminder_at_ms=T0 + REPEAT_MS)
    assert not due_reminder(reminded, monitor, T0 + 2 * REPEAT_MS - 1)
    assert due_reminder(reminded, monitor, T0 + 2 * REPEAT_MS)
    assert not due_reminder(down, make_monitor(), T0 + 100 * REPEAT_MS)
    assert not due_reminder(MonitorState(status=MonitorStatus.UP), monitor, T0 + 100 * REPEAT_MS)
    assert not due_reminder(MonitorState(), monitor, T0 + 100 * REPEAT_MS)
    assert not due_reminder(MonitorState(status=MonitorStatus.DOWN), monitor, T0 + 100 * REPEAT_MS)
    assert due_reminder(down, make_monitor(repeat_interval="1.5s"), T0 + 1500)


# --- region liveness ---------------------------------------------------------


def test_a_silent_region_stops_counting_and_the_others_alert() -> None:
    # 2 of 2 by default; b's process dies after its first result.
    machine = Run(("a", "b"), silence_ms=3 * STEP)
    machine.script("b+ a- a- a-")
    assert machine.changes() == "" and machine.state.silent == ()
    machine.token("a-")  # b last heard 4 steps before a's newest: silent
    assert machine.state.silent == ("b",)
    assert machine.changes() == "down@4"
    (_, down) = machine.log[0]
    assert down.incident_opened_at_ms == T0 + 2 * STEP  # a alone is the quorum of the regions that report


def test_a_region_that_reports_again_counts_again() -> None:
    machine = Run(("a", "b"), silence_ms=3 * STEP)
    machine.script("b+ a- a- a- a-")
    assert machine.changes() == "down@4" and machine.state.silent == ("b",)
    machine.token("b+")
    assert machine.state.silent == ()
    machine.script("a+ a+")  # up needs both again: b's run of two successes, then a's
    assert machine.changes() == "down@4 up@7"


def test_a_region_never_heard_from_counts_until_the_silence_has_passed() -> None:
    machine = Run(("a", "b"), silence_ms=3 * STEP)
    machine.script("a- a- a- a-")  # three steps after a's first result: b still counts (and blocks)
    assert machine.changes() == "" and machine.state.silent == ()
    machine.token("a-")
    assert machine.state.silent == ("b",) and machine.changes() == "down@4"


def test_no_region_goes_silent_while_none_reports() -> None:
    # The bus was away: every region's results arrive late, together; nobody is silent.
    machine = Run(("a", "b"), silence_ms=3 * STEP)
    machine.script("a+ b+ a+ b+")
    machine.feed(check("a", False, at=T0 + 60 * STEP), now=T0 + 61 * STEP)
    machine.feed(check("b", False, at=T0 + 60 * STEP + 5), now=T0 + 61 * STEP)
    assert machine.state.silent == ()


def test_reporting_regions() -> None:
    state = MonitorState(
        regions={"a": RegionState(last_checked_at_ms=T0), "b": RegionState(last_checked_at_ms=T0 - 3 * STEP)},
        first_result_ms=T0 - 10 * STEP,
    )
    assert reporting_regions(state, ["a", "b", "c"], 3 * STEP) == ["a", "b"]
    assert reporting_regions(state, ["a", "b", "c"], 3 * STEP - 1) == ["a"]
    assert reporting_regions(MonitorState(), ["a", "b"], 1) == ["a", "b"]


def test_default_silence_is_three_intervals() -> None:
    assert silence_ms_for(make_monitor(interval=30)) == 90_000
    assert silence_ms_for(make_monitor(interval=30), 2) == 60_000


# --- JSON ------------------------------------------------------------------


def test_initial_state_json() -> None:
    assert MonitorState().to_json() == {
        "version": 2,
        "status": "unknown",
        "slow": False,
        "regions": {},
        "incident": None,
        "last_reminder_at_ms": None,
        "reminders": 0,
        "first_result_ms": None,
        "silent": [],
        "hold": None,
    }
    assert roundtrip(MonitorState()) == MonitorState()


def test_full_state_round_trips() -> None:
    state = MonitorState(
        status=MonitorStatus.DOWN,
        slow=False,
        regions={
            "eu-west": RegionState(
                consecutive_failures=4,
                last_status=CheckStatus.DOWN,
                last_checked_at_ms=T0,
                last_response_time_ms=10_000.0,
                last_error_class="timeout",
                last_error="timed out after 10 s",
            ),
            "us-east": RegionState(
                consecutive_successes=9,
                consecutive_slow=2,
                last_status=CheckStatus.UP,
                last_checked_at_ms=T0 - 5,
                last_response_time_ms=1234.5,
                streak_since_ms=T0 - 9 * STEP,
            ),
        },
        incident=Incident(opened_at_ms=T0 - STEP, cause="timeout: timed out after 10 s", id=12),
        last_reminder_at_ms=T0,
        reminders=3,
        first_result_ms=T0 - 100 * STEP,
        silent=("ap-south",),
    )
    assert roundtrip(state) == state
    assert MonitorState.from_json(json.dumps(state.to_json())) == state


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, MonitorState()),
        ({}, MonitorState()),
        ({"status": "up"}, MonitorState(status=MonitorStatus.UP)),
        ({"status": None, "regions": None}, MonitorState()),
        ({"regions": {"a": {}}}, MonitorState(regions={"a": RegionState()})),
        (
            {"regions": {"a": {"consecutive_failures": 2, "last_status": "down"}}},
            MonitorState(regions={"a": RegionState(consecutive_failures=2, last_status=CheckStatus.DOWN)}),
        ),
        (
            {"status": "down", "incident": {"opened_at_ms": T0}},
            MonitorState(status=MonitorStatus.DOWN, incident=Incident(opened_at_ms=T0, cause="")),
        ),
        ({"incident": {"cause": "no time"}}, MonitorState()),
        ({"version": 99, "some_future_key": [1, 2], "slow": True}, MonitorState(slow=True)),
        (  # a version-1 state: no run starts, no reminder count, no silence
            {"version": 1, "status": "down", "regions": {"a": {"last_checked_at_ms": T0, "last_status": "down"}}},
            MonitorState(
                status=MonitorStatus.DOWN,
                regions={"a": RegionState(last_status=CheckStatus.DOWN, last_checked_at_ms=T0)},
            ),
        ),
        ('{"status": "down"}', MonitorState(status=MonitorStatus.DOWN)),
    ],
)
def test_from_json_tolerates_missing_and_extra_keys(data: Any, expected: MonitorState) -> None:
    assert MonitorState.from_json(data) == expected


@pytest.mark.parametrize("data", [{"status": "sideways"}, {"regions": {"a": {"last_status": "maybe"}}}])
def test_from_json_rejects_bad_values(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        MonitorState.from_json(data)


def test_from_json_rejects_non_objects() -> None:
    with pytest.raises(TypeError):
        MonitorState.from_json("[1, 2]")


def test_state_loaded_mid_incident_carries_on() -> None:
    machine, down_at = down_machine()
    machine.state = attach_incident_id(machine.state, 3)
    reloaded = Run(
        ("a",), state=MonitorState.from_json(json.loads(json.dumps(machine.state.to_json()))), repeat_interval=REPEAT_S
    )
    reloaded.count = machine.count
    reloaded.script("a- a+ a+")
    ((_, up),) = reloaded.log
    assert up.kind is ChangeKind.UP and up.incident_id == 3 and up.incident_opened_at_ms == down_at
    assert up.downtime_s == 4 * STEP / 1000  # failures at steps 1-4, first good check at step 5
