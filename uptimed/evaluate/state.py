"""The evaluator's state machine: check results in, state changes out.

Pure: no I/O, no clock reads, no asyncio. The evaluator loads a monitor's
``MonitorState`` (PostgreSQL jsonb), calls ``evaluate`` for each
``CheckResult`` of that monitor in check-time order, and ``tick`` when the
state's timer (``next_wake_ms``) is due; it acts on the returned
``StateChange`` list and stores the new state.

Time comes from the check results themselves: a change made by a result
happens at that result's ``checked_at_ms``, so a backlog evaluated late (the
message bus was away) still gives every change its true time, and replaying
results gives the same changes. Only timers (reminders) read a clock, passed
in as ``now_ms``.

Rules, per monitor, over its effective ``regions`` and a ``quorum`` of them:

- Each region has a verdict: ``down`` after ``failure_threshold`` failures in
  a row, ``up`` after ``success_threshold`` successes in a row, unchanged in
  between (none before either).
- Region liveness: a region whose newest result is more than
  ``silence_ms`` older than the monitor's newest result (from any region) is
  *silent* and does not count; the quorum is taken over the regions that
  report (``quorum_for(monitor, live)``). A region that never reported counts
  as reporting until ``silence_ms`` after the monitor's first result. So a
  dead region's process cannot blind a quorum monitor, and a stalled bus
  (no region reports) silences nobody.
- DOWN when at least ``quorum`` reporting regions say down, once; it opens an
  incident dated from when the quorum started failing (the first failed check
  of the ``quorum``-th failing region).
- UP (from DOWN) when at least ``quorum`` reporting regions say up and fewer
  than ``quorum`` say down; it resolves the incident, and its downtime runs
  from the incident's start to the first good check of the recovery. From
  ``unknown`` (no history) the monitor becomes ``up`` silently.
- SLOW (only while UP, when ``slow_threshold_ms`` is set) when ``quorum``
  regions each have ``failure_threshold`` consecutive slow successes, once;
  the flag clears silently after ``success_threshold`` consecutive fast
  successes in ``quorum`` regions, or when the monitor goes DOWN.
- MISSED heartbeat (a pushed kind), from the timer (``tick``): a DOWN result
  dated at the ping's deadline, folded in like any other result
  (:mod:`uptimed.evaluate.heartbeat`).
- REMINDER while DOWN, from the timer (``tick``), at most once per
  ``repeat_interval``, counted from the later of going down and the last
  reminder; the n-th reminder of an incident is numbered so that two
  processes that both fire it publish the same event.
- ESCALATED while DOWN, from the timer, for each step of the monitor's
  escalation policy when it is due (:mod:`uptimed.evaluate.escalation`);
  ACKNOWLEDGED when someone takes the incident (``acknowledge``), which stops
  the steps and the reminders. With a policy, each change says which
  integrations it is for (``StateChange.audience``): a step's own, then
  everyone reached so far for reminders, the acknowledgement and the recovery.

MAINTENANCE: a change made while a maintenance window of the monitor is on is
held (recorded, not announced); the hold is part of the state and the timer
releases it when the window ends (:mod:`uptimed.evaluate.maintenance`).

Incident ids: the store assigns them, so the state machine cannot. A DOWN
change opens ``state.incident`` with ``id=None``; the caller inserts the
incident row and records its id with ``attach_incident_id``. Later UP and
REMINDER changes carry that id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from uptimed.check import CheckResult, CheckStatus
from uptimed.durations import format_duration
from uptimed.evaluate import escalation, heartbeat, maintenance
from uptimed.evaluate.escalation import Acknowledgement, Escalation, FiredStep, Policy
from uptimed.monitor import MonitorFields
from uptimed.rules.regions import quorum_for

STATE_VERSION = 2
"""Written into ``to_json``; ``from_json`` reads older and newer versions alike."""

DEFAULT_SILENCE_INTERVALS = 3
"""A region is silent for a monitor after this many of its intervals without a result."""


class MonitorStatus(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class ChangeKind(StrEnum):
    DOWN = "down"
    UP = "up"
    SLOW = "slow"
    REMINDER = "reminder"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True, slots=True)
class RegionState:
    """What one region has seen of a monitor lately."""

    consecutive_failures: int = 0
    consecutive_successes: int = 0
    consecutive_slow: int = 0
    """Successes slower than ``slow_threshold_ms`` in a row."""
    consecutive_fast: int = 0
    """Successes within ``slow_threshold_ms`` in a row (0 when no threshold is set)."""
    verdict: CheckStatus | None = None
    """This region's say: down after ``failure_threshold`` failures in a row, up after
    ``success_threshold`` successes in a row, unchanged in between."""
    last_status: CheckStatus | None = None
    last_checked_at_ms: int | None = None
    last_response_time_ms: float | None = None
    last_error_class: str | None = None
    """Of the most recent failure; kept after the region recovers."""
    last_error: str | None = None
    streak_since_ms: int | None = None
    """``checked_at_ms`` of the first result of the current run of failures (or of successes)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
            "consecutive_slow": self.consecutive_slow,
            "consecutive_fast": self.consecutive_fast,
            "verdict": self.verdict.value if self.verdict else None,
            "last_status": self.last_status.value if self.last_status else None,
            "last_checked_at_ms": self.last_checked_at_ms,
            "last_response_time_ms": self.last_response_time_ms,
            "last_error_class": self.last_error_class,
            "last_error": self.last_error,
            "streak_since_ms": self.streak_since_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegionState:
        status = data.get("last_status")
        verdict = data.get("verdict")
        return cls(
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            consecutive_successes=int(data.get("consecutive_successes", 0)),
            consecutive_slow=int(data.get("consecutive_slow", 0)),
            consecutive_fast=int(data.get("consecutive_fast", 0)),
            verdict=CheckStatus(verdict) if verdict else None,
            last_status=CheckStatus(status) if status else None,
            last_checked_at_ms=_optional_int(data.get("last_checked_at_ms")),
            last_response_time_ms=_optional_float(data.get("last_response_time_ms")),
            last_error_class=data.get("last_error_class"),
            last_error=data.get("last_error"),
            streak_since_ms=_optional_int(data.get("streak_since_ms")),
        )

    @property
    def since_ms(self) -> int | None:
        """When this region's current run began (older states: its newest result)."""
        return self.streak_since_ms if self.streak_since_ms is not None else self.last_checked_at_ms


@dataclass(frozen=True, slots=True)
class Incident:
    """The open incident of a DOWN monitor."""

    opened_at_ms: int
    cause: str
    id: int | None = None
    """Assigned by the store after the DOWN change; see ``attach_incident_id``."""

    def to_json(self) -> dict[str, Any]:
        return {"opened_at_ms": self.opened_at_ms, "cause": self.cause, "id": self.id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Incident | None:
        if data.get("opened_at_ms") is None:
            return None
        return cls(
            opened_at_ms=int(data["opened_at_ms"]),
            cause=str(data.get("cause") or ""),
            id=_optional_int(data.get("id")),
        )


@dataclass(frozen=True, slots=True)
class MonitorState:
    """Everything the evaluator remembers about one monitor between results."""

    status: MonitorStatus = MonitorStatus.UNKNOWN
    slow: bool = False
    regions: Mapping[str, RegionState] = field(default_factory=dict)
    incident: Incident | None = None
    """Open while DOWN, None otherwise."""
    last_reminder_at_ms: int | None = None
    reminders: int = 0
    """Reminders sent for the open incident (numbers the next one)."""
    first_result_ms: int | None = None
    """``checked_at_ms`` of the first result ever evaluated (from any region)."""
    silent: tuple[str, ...] = ()
    """Regions that stopped reporting for this monitor, as of its newest result."""
    hold: maintenance.Hold | None = None
    """Set while changes are held back by a maintenance window, until it ends."""
    escalation: Escalation | None = None
    """The open incident's escalation and acknowledgement (None: no policy, not acknowledged)."""

    @property
    def down_since_ms(self) -> int | None:
        return self.incident.opened_at_ms if self.incident else None

    @property
    def newest_result_ms(self) -> int | None:
        times = [r.last_checked_at_ms for r in self.regions.values() if r.last_checked_at_ms is not None]
        return max(times, default=None)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for a jsonb column)."""
        data = {
            "version": STATE_VERSION,
            "status": self.status.value,
            "slow": self.slow,
            "regions": {name: region.to_json() for name, region in self.regions.items()},
            "incident": self.incident.to_json() if self.incident else None,
            "last_reminder_at_ms": self.last_reminder_at_ms,
            "reminders": self.reminders,
            "first_result_ms": self.first_result_ms,
            "silent": list(self.silent),
            "hold": self.hold.to_json() if self.hold else None,
        }
        if self.escalation is not None:
            data["escalation"] = self.escalation.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | None) -> MonitorState:
        """Read what ``to_json`` wrote (a dict or its JSON text); missing keys take their defaults.

        Unknown keys are ignored; a value of the wrong kind raises ``ValueError``
        (or ``TypeError``), and the caller may then start from ``MonitorState()``.
        """
        if data is None:
            return cls()
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, Mapping):
            raise TypeError(f"monitor state must be a JSON object, got {type(data).__name__}")
        incident = data.get("incident")
        escalated = data.get("escalation")
        return cls(
            status=MonitorStatus(data.get("status") or MonitorStatus.UNKNOWN),
            slow=bool(data.get("slow", False)),
            regions={str(name): RegionState.from_json(region) for name, region in (data.get("regions") or {}).items()},
            incident=Incident.from_json(incident) if incident else None,
            last_reminder_at_ms=_optional_int(data.get("last_reminder_at_ms")),
            reminders=int(data.get("reminders") or 0),
            first_result_ms=_optional_int(data.get("first_result_ms")),
            silent=tuple(str(name) for name in data.get("silent") or ()),
            hold=maintenance.Hold.from_json(data.get("hold")),
            escalation=Escalation.from_json(escalated) if escalated else None,
        )


@dataclass(frozen=True, slots=True)
class StateChange:
    """A transition of a monitor, to be published as a ``MonitorEvent`` (see ``events.event_for``)."""

    kind: ChangeKind
    at_ms: int
    """When it happened: the check time of the result that completed it, or the timer's time."""
    reason: str
    regions: Mapping[str, str]
    """Last status (``up``/``down``) of each region that has reported."""
    region: str | None = None
    """Region of the result that triggered it; None for a timer-driven reminder."""
    checked_at_ms: int | None = None
    """``checked_at_ms`` of the triggering result; with ``region`` it identifies the change across replays."""
    response_time_ms: float | None = None
    incident_opened_at_ms: int | None = None
    """DOWN: of the incident it opens; UP: that it resolves; REMINDER: that is still open."""
    incident_id: int | None = None
    """UP and REMINDER: the open incident's id if the caller attached it; DOWN: always None."""
    downtime_s: float | None = None
    """UP only: from the incident's start to the first good check of the recovery."""
    sequence: int | None = None
    """REMINDER only: its number within the incident (1, 2, ...)."""
    held: bool = False
    """Made during a maintenance window: recorded (its incident opened or resolved), not announced."""
    audience: tuple[int, ...] | None = None
    """With an escalation policy: the integrations this change is for; None: the monitor's routed integrations."""
    step: FiredStep | None = None
    """ESCALATED (and a DOWN that sends a policy's first step): the step."""
    acknowledgement: Acknowledgement | None = None
    """ACKNOWLEDGED only: who took the incident, and how."""

    @property
    def opens_incident(self) -> bool:
        # A DOWN that already carries its incident's id announces one opened earlier (after maintenance).
        return self.kind is ChangeKind.DOWN and self.incident_id is None

    @property
    def resolves_incident(self) -> bool:
        return self.kind is ChangeKind.UP


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of one result: the state to store and the changes to publish."""

    state: MonitorState
    changes: tuple[StateChange, ...] = ()
    accepted: bool = True
    """False when the result was ignored (unknown region, duplicate or stale): state is unchanged."""
    made: tuple[CheckResult, ...] = ()
    """Results the timer made (a missed heartbeat), to be stored like the checks."""


def silence_ms_for(monitor: MonitorFields, intervals: float = DEFAULT_SILENCE_INTERVALS) -> int:
    """How long a region may send no result for ``monitor`` before it stops counting."""
    return round(monitor.interval * intervals * 1000)


def reporting_regions(state: MonitorState, regions: Sequence[str], silence_ms: int) -> list[str]:
    """The regions of ``regions`` that count for the quorum: those not silent (see the module docs)."""
    newest = state.newest_result_ms
    if newest is None:
        return list(regions)
    live = []
    for name in regions:
        region = state.regions.get(name)
        heard = region.last_checked_at_ms if region and region.last_checked_at_ms is not None else state.first_result_ms
        if heard is None or newest - heard <= silence_ms:
            live.append(name)
    return live


def evaluate(
    state: MonitorState,
    result: CheckResult,
    *,
    monitor: MonitorFields,
    regions: Sequence[str],
    silence_ms: int | None = None,
    policy: Policy | None = None,
) -> Evaluation:
    """Fold one check result into the monitor's state.

    ``regions`` are the monitor's effective regions; ``silence_ms`` defaults
    to :data:`DEFAULT_SILENCE_INTERVALS` of the monitor's interval;
    ``policy`` is the monitor's escalation policy, copied into an incident it opens. A result
    from another region, or not newer than the last one seen from its region
    (a Kafka redelivery or a late straggler), is ignored, so replaying results
    is harmless.
    """
    if result.region not in regions:
        return Evaluation(state, accepted=False)
    previous = state.regions.get(result.region, RegionState())
    if previous.last_checked_at_ms is not None and result.checked_at_ms <= previous.last_checked_at_ms:
        return Evaluation(state, accepted=False)
    at_ms = result.checked_at_ms
    silence = silence_ms if silence_ms is not None else silence_ms_for(monitor)
    # A maintenance that ended before this result owes its announcement first, in order.
    released = maintenance.release(state, regions=regions, now_ms=at_ms)
    if released is not None:
        state = released.state
    changes: list[StateChange] = list(released.changes) if released is not None else []

    # Regions dropped from the monitor are forgotten, so they never count again.
    known = {name: region for name, region in state.regions.items() if name in regions}
    known[result.region] = _advance(previous, result, monitor)
    first = state.first_result_ms if state.first_result_ms is not None else at_ms
    state = replace(state, regions=known, first_result_ms=first)
    if monitor.slow_threshold_ms is None and state.slow:
        state = replace(state, slow=False)

    live = reporting_regions(state, regions, silence)
    state = replace(state, silent=tuple(name for name in regions if name not in live))
    quorum = quorum_for(monitor, live)
    failing = [name for name in live if _get(known, name).verdict is CheckStatus.DOWN]
    healthy = [name for name in live if _get(known, name).verdict is CheckStatus.UP]

    def change(kind: ChangeKind, reason: str, **extra: Any) -> StateChange:
        return StateChange(
            kind=kind,
            at_ms=at_ms,
            reason=reason,
            regions=region_statuses(known, regions),
            region=result.region,
            checked_at_ms=result.checked_at_ms,
            response_time_ms=result.response_time_ms,
            **extra,
        )

    if state.status is not MonitorStatus.DOWN and len(failing) >= quorum:
        cause = _cause(known, failing)
        opened_at = _quorum_since(known, failing, quorum)
        escalated, first_step = escalation.start(policy)
        state = replace(
            state,
            status=MonitorStatus.DOWN,
            slow=False,
            incident=Incident(opened_at_ms=opened_at, cause=cause),
            last_reminder_at_ms=None,
            reminders=0,
            escalation=escalated,
        )
        changes.append(
            change(
                ChangeKind.DOWN, cause, incident_opened_at_ms=opened_at, audience=escalated.audience, step=first_step
            )
        )
    elif state.status is not MonitorStatus.UP and len(healthy) >= quorum and len(failing) < quorum:
        if state.status is MonitorStatus.DOWN:
            incident = state.incident
            up_since = _quorum_since(known, healthy, quorum)
            changes.append(
                change(
                    ChangeKind.UP,
                    f"up again in {', '.join(healthy)}",
                    incident_opened_at_ms=incident.opened_at_ms if incident else None,
                    incident_id=incident.id if incident else None,
                    downtime_s=max(0, up_since - incident.opened_at_ms) / 1000 if incident else None,
                    audience=state.escalation.audience if state.escalation else None,
                )
            )
        # From UNKNOWN this is silent: nobody wants "up" for a monitor that was never down.
        state = replace(
            state, status=MonitorStatus.UP, incident=None, last_reminder_at_ms=None, reminders=0, escalation=None
        )

    if state.status is MonitorStatus.UP and monitor.slow_threshold_ms is not None:
        slow = [name for name in live if _get(known, name).consecutive_slow >= monitor.failure_threshold]
        fast = [name for name in live if _get(known, name).consecutive_fast >= monitor.success_threshold]
        if not state.slow and len(slow) >= quorum:
            state = replace(state, slow=True)
            changes.append(change(ChangeKind.SLOW, _slow_reason(known, slow, monitor.slow_threshold_ms)))
        elif state.slow and len(fast) >= quorum and len(slow) < quorum:
            # Cleared silently: there is no "fast again" event type.
            state = replace(state, slow=False)

    return Evaluation(state, tuple(changes))


def due_reminder(state: MonitorState, monitor: MonitorFields, now_ms: int) -> bool:
    """Whether a DOWN monitor is owed a reminder at ``now_ms``."""
    due = reminder_due_ms(state, monitor)
    return due is not None and now_ms >= due


def reminder_due_ms(state: MonitorState, monitor: MonitorFields) -> int | None:
    """When the next reminder is due, None when none will be."""
    if state.status is not MonitorStatus.DOWN or monitor.repeat_interval is None:
        return None
    if state.escalation is not None and state.escalation.acknowledged is not None:
        return None  # someone took it: no more reminders
    since = state.last_reminder_at_ms if state.last_reminder_at_ms is not None else state.down_since_ms
    if since is None:
        return None
    return since + round(monitor.repeat_interval * 1000)


def next_wake_ms(state: MonitorState, monitor: MonitorFields) -> int | None:
    """When :func:`tick` next has something to do for this state, None for never."""
    due = [reminder_due_ms(state, monitor), _escalation_due_ms(state), maintenance.wake_ms(state)]
    if not monitor.scheduled:
        due.append(heartbeat.wake_ms(state, monitor))
    return min((at for at in due if at is not None), default=None)


def tick(
    state: MonitorState,
    *,
    monitor: MonitorFields,
    regions: Sequence[str],
    now_ms: int,
    policy: Policy | None = None,
) -> Evaluation:
    """The timer path: what is due at ``now_ms`` without a new result (the end of a maintenance, a missed
    heartbeat, a REMINDER, escalation steps); ``policy`` is the one an incident a missed heartbeat opens follows."""
    released = maintenance.release(state, regions=regions, now_ms=now_ms)
    if released is not None:
        return released
    if not monitor.scheduled and (missed := heartbeat.missed_ping(state, monitor, now_ms)) is not None:
        return replace(evaluate(state, missed, monitor=monitor, regions=regions, policy=policy), made=(missed,))

    def change(kind: ChangeKind, reason: str, **extra: Any) -> StateChange:
        return StateChange(
            kind=kind, at_ms=now_ms, reason=reason, regions=region_statuses(state.regions, regions), **extra
        )

    changes: list[StateChange] = []
    if due_reminder(state, monitor, now_ms):
        changes.append(_reminder(state, now_ms, change))
        state = replace(state, last_reminder_at_ms=now_ms, reminders=state.reminders + 1)
    state, steps = _escalate(state, now_ms, change)
    changes += steps
    if not changes:
        return Evaluation(state, accepted=False)
    return Evaluation(state, tuple(changes))


def acknowledge(state: MonitorState, ack: Acknowledgement | None, *, regions: Sequence[str], now_ms: int) -> Evaluation:
    """Apply the open incident's acknowledgement as the store has it (``None``: not, or no longer, acknowledged).

    A new acknowledgement is an ACKNOWLEDGED change for everyone reached so
    far and stops the steps and reminders; a withdrawn one lets them go on,
    silently. Nothing to do (no open incident, or nothing new): not accepted.
    """
    current = state.escalation.acknowledged if state.escalation else None
    if state.status is not MonitorStatus.DOWN or state.incident is None or ack == current:
        return Evaluation(state, accepted=False)
    state = replace(state, escalation=escalation.acknowledge(state.escalation, ack))
    if ack is None:
        return Evaluation(state)
    incident = state.incident
    assert state.escalation is not None and incident is not None
    acknowledged = StateChange(
        kind=ChangeKind.ACKNOWLEDGED,
        at_ms=ack.at_ms,
        reason=f"acknowledged by {escalation.acknowledged_by(ack.by, ack.via)}",
        regions=region_statuses(state.regions, regions),
        incident_opened_at_ms=incident.opened_at_ms,
        incident_id=incident.id,
        audience=state.escalation.audience,
        acknowledgement=ack,
    )
    return Evaluation(state, (acknowledged,))


def attach_incident_id(state: MonitorState, incident_id: int, *, opened_at_ms: int | None = None) -> MonitorState:
    """Record the store's id of the open incident.

    With ``opened_at_ms`` (the DOWN change's ``incident_opened_at_ms``) the id
    is attached only to that incident, so a late id never lands on a newer
    one. Without an open incident the state is returned unchanged.
    """
    incident = state.incident
    if incident is None or (opened_at_ms is not None and incident.opened_at_ms != opened_at_ms):
        return state
    return replace(state, incident=replace(incident, id=incident_id))


def _advance(previous: RegionState, result: CheckResult, monitor: MonitorFields) -> RegionState:
    at = result.checked_at_ms
    if result.status is CheckStatus.DOWN:
        failures = previous.consecutive_failures + 1
        return RegionState(
            consecutive_failures=failures,
            verdict=CheckStatus.DOWN if failures >= monitor.failure_threshold else previous.verdict,
            last_status=CheckStatus.DOWN,
            last_checked_at_ms=at,
            last_response_time_ms=result.response_time_ms,
            last_error_class=result.error_class.value if result.error_class else None,
            last_error=result.error,
            streak_since_ms=previous.since_ms if previous.consecutive_failures else at,
        )
    threshold_ms = monitor.slow_threshold_ms
    slow = threshold_ms is not None and result.response_time_ms is not None and result.response_time_ms > threshold_ms
    successes = previous.consecutive_successes + 1
    return RegionState(
        consecutive_successes=successes,
        consecutive_slow=previous.consecutive_slow + 1 if slow else 0,
        consecutive_fast=previous.consecutive_fast + 1 if threshold_ms is not None and not slow else 0,
        verdict=CheckStatus.UP if successes >= monitor.success_threshold else previous.verdict,
        last_status=CheckStatus.UP,
        last_checked_at_ms=at,
        last_response_time_ms=result.response_time_ms,
        last_error_class=previous.last_error_class,
        last_error=previous.last_error,
        streak_since_ms=previous.since_ms if previous.consecutive_successes else at,
    )


def _quorum_since(known: Mapping[str, RegionState], agreeing: Sequence[str], quorum: int) -> int:
    """When ``quorum`` of the ``agreeing`` regions first agreed: the quorum-th earliest start of their runs."""
    starts = sorted(known[name].since_ms or 0 for name in agreeing)
    return starts[quorum - 1]


def _get(regions: Mapping[str, RegionState], name: str) -> RegionState:
    return regions.get(name) or RegionState()


def region_statuses(known: Mapping[str, RegionState], regions: Sequence[str]) -> dict[str, str]:
    """The last status of each of ``regions`` that has reported."""
    return {name: status.value for name in regions if name in known and (status := known[name].last_status) is not None}


def _describe_error(region: RegionState) -> str:
    if region.last_error_class and region.last_error:
        return f"{region.last_error_class}: {region.last_error}"
    return region.last_error or region.last_error_class or "check failed"


def _cause(known: Mapping[str, RegionState], failing: Sequence[str]) -> str:
    """One error if the failing regions agree, else ``region: error`` for each."""
    errors = [(name, _describe_error(known[name])) for name in failing]
    distinct = {error for _, error in errors}
    if len(distinct) == 1:
        return distinct.pop()
    return "; ".join(f"{name}: {error}" for name, error in errors)


def _slow_reason(known: Mapping[str, RegionState], slow: Sequence[str], threshold_ms: int) -> str:
    times = ", ".join(f"{name} {known[name].last_response_time_ms:g} ms" for name in slow)
    return f"slower than {threshold_ms} ms: {times}"


_MakeChange = Callable[..., StateChange]


def _reminder(state: MonitorState, now_ms: int, change: _MakeChange) -> StateChange:
    incident = state.incident
    since = state.down_since_ms
    minutes = f" for {format_duration((now_ms - since) / 1000)}" if since is not None else ""
    cause = f": {incident.cause}" if incident and incident.cause else ""
    return change(
        ChangeKind.REMINDER,
        f"still down{minutes}{cause}",
        incident_opened_at_ms=since,
        incident_id=incident.id if incident else None,
        sequence=state.reminders + 1,
        audience=state.escalation.audience if state.escalation else None,
    )


def _escalation_due_ms(state: MonitorState) -> int | None:
    # Held by a maintenance window, no step is due: its end wakes the monitor and restarts them (maintenance.release).
    if state.status is not MonitorStatus.DOWN or state.incident is None or state.hold is not None:
        return None
    return escalation.next_due_ms(state.escalation, state.incident.opened_at_ms)


def _escalate(state: MonitorState, now_ms: int, change: _MakeChange) -> tuple[MonitorState, list[StateChange]]:
    """The escalation steps due at ``now_ms``, each a change of its own."""
    incident = state.incident
    if state.status is not MonitorStatus.DOWN or incident is None or state.escalation is None:
        return state, []
    if state.escalation.acknowledged is not None or state.hold is not None:
        return state, []
    progressed, steps = escalation.fire_due(state.escalation, incident.opened_at_ms, now_ms)
    if not steps:
        return state, []
    since = format_duration((now_ms - incident.opened_at_ms) / 1000)
    cause = f": {incident.cause}" if incident.cause else ""
    changes = [
        change(
            ChangeKind.ESCALATED,
            f"still down for {since}, escalated to {_step_title(step)}{cause}",
            incident_opened_at_ms=incident.opened_at_ms,
            incident_id=incident.id,
            sequence=step.number,
            audience=step.integration_ids,
            step=step,
        )
        for step in steps
    ]
    return replace(state, escalation=progressed), changes


def _step_title(step: FiredStep) -> str:
    title = f"step {step.number} of {step.of}"
    if step.name:
        title += f" ({step.name})"
    return f"{title}, repeated" if step.repeat else title


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
