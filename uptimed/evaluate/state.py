"""The evaluator's state machine: check results in, state changes out.

Pure: no I/O, no clock reads (time comes in as ``now_ms``), no asyncio. The
evaluator loads a monitor's ``MonitorState`` (PostgreSQL jsonb), calls
``evaluate`` for each ``CheckResult`` of that monitor, acts on the returned
``StateChange`` list and stores the new state.

Rules, per monitor, over its effective ``regions`` and a ``quorum`` of them:

- Each region has a verdict: ``down`` after ``failure_threshold`` failures in
  a row, ``up`` after ``success_threshold`` successes in a row, unchanged in
  between (none before either).
- DOWN when at least ``quorum`` regions say down, once; it opens an incident.
- UP (from DOWN) when at least ``quorum`` regions say up and fewer than
  ``quorum`` say down (both can hold when the quorum is half the regions or
  less); it resolves the incident and carries the downtime. From ``unknown``
  (no history) the monitor becomes ``up`` silently.
- SLOW (only while UP, when ``slow_threshold_ms`` is set) when ``quorum``
  regions each have ``failure_threshold`` consecutive slow successes, once;
  the flag clears silently after ``success_threshold`` consecutive fast
  successes in ``quorum`` regions, or when the monitor goes DOWN.
- REMINDER while DOWN, at most once per ``repeat_interval``, counted from the
  later of going down and the last reminder.

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

from uptimed.bus.messages import CheckResult, CheckStatus
from uptimed.durations import format_duration
from uptimed.monitor import MonitorFields

STATE_VERSION = 1
"""Written into ``to_json``; ``from_json`` reads older and newer versions alike."""


class MonitorStatus(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class ChangeKind(StrEnum):
    DOWN = "down"
    UP = "up"
    SLOW = "slow"
    REMINDER = "reminder"


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
        )


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

    @property
    def down_since_ms(self) -> int | None:
        return self.incident.opened_at_ms if self.incident else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for a jsonb column)."""
        return {
            "version": STATE_VERSION,
            "status": self.status.value,
            "slow": self.slow,
            "regions": {name: region.to_json() for name, region in self.regions.items()},
            "incident": self.incident.to_json() if self.incident else None,
            "last_reminder_at_ms": self.last_reminder_at_ms,
        }

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
        return cls(
            status=MonitorStatus(data.get("status") or MonitorStatus.UNKNOWN),
            slow=bool(data.get("slow", False)),
            regions={str(name): RegionState.from_json(region) for name, region in (data.get("regions") or {}).items()},
            incident=Incident.from_json(incident) if incident else None,
            last_reminder_at_ms=_optional_int(data.get("last_reminder_at_ms")),
        )


@dataclass(frozen=True, slots=True)
class StateChange:
    """A transition of a monitor, to be published as a ``MonitorEvent`` (see ``events.event_for``)."""

    kind: ChangeKind
    at_ms: int
    """``now_ms`` of the evaluation that made it."""
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
    """UP only: seconds from going down to ``at_ms``."""

    @property
    def opens_incident(self) -> bool:
        return self.kind is ChangeKind.DOWN

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


def quorum_for(monitor: MonitorFields, regions: Sequence[str]) -> int:
    """How many of ``regions`` must agree: ``monitor.quorum`` capped at their number, else a majority."""
    count = len(regions)
    if monitor.quorum:
        return max(1, min(monitor.quorum, count))
    return count // 2 + 1


def evaluate(
    state: MonitorState,
    result: CheckResult,
    *,
    monitor: MonitorFields,
    regions: Sequence[str],
    now_ms: int,
) -> Evaluation:
    """Fold one check result into the monitor's state.

    ``regions`` are the monitor's effective regions. A result from another
    region, or not newer than the last one seen from its region (a Kafka
    redelivery or a late straggler), is ignored, so replaying results is
    harmless.
    """
    if result.region not in regions:
        return Evaluation(state, accepted=False)
    previous = state.regions.get(result.region, RegionState())
    if previous.last_checked_at_ms is not None and result.checked_at_ms <= previous.last_checked_at_ms:
        return Evaluation(state, accepted=False)

    # Regions dropped from the monitor are forgotten, so they never count again.
    known = {name: region for name, region in state.regions.items() if name in regions}
    known[result.region] = _advance(previous, result, monitor)
    state = replace(state, regions=known)
    if monitor.slow_threshold_ms is None and state.slow:
        state = replace(state, slow=False)

    quorum = quorum_for(monitor, regions)
    failing = [name for name in regions if _get(known, name).verdict is CheckStatus.DOWN]
    healthy = [name for name in regions if _get(known, name).verdict is CheckStatus.UP]
    changes: list[StateChange] = []

    def change(kind: ChangeKind, reason: str, **extra: Any) -> StateChange:
        return StateChange(
            kind=kind,
            at_ms=now_ms,
            reason=reason,
            regions=_region_statuses(known, regions),
            region=result.region,
            checked_at_ms=result.checked_at_ms,
            response_time_ms=result.response_time_ms,
            **extra,
        )

    if state.status is not MonitorStatus.DOWN and len(failing) >= quorum:
        cause = _cause(known, failing)
        state = replace(
            state,
            status=MonitorStatus.DOWN,
            slow=False,
            incident=Incident(opened_at_ms=now_ms, cause=cause),
            last_reminder_at_ms=None,
        )
        changes.append(change(ChangeKind.DOWN, cause, incident_opened_at_ms=now_ms))
    elif state.status is not MonitorStatus.UP and len(healthy) >= quorum and len(failing) < quorum:
        if state.status is MonitorStatus.DOWN:
            incident = state.incident
            changes.append(
                change(
                    ChangeKind.UP,
                    f"up again in {', '.join(healthy)}",
                    incident_opened_at_ms=incident.opened_at_ms if incident else None,
                    incident_id=incident.id if incident else None,
                    downtime_s=max(0, now_ms - incident.opened_at_ms) / 1000 if incident else None,
                )
            )
        # From UNKNOWN this is silent: nobody wants "up" for a monitor that was never down.
        state = replace(state, status=MonitorStatus.UP, incident=None, last_reminder_at_ms=None)
    elif due_reminder(state, monitor, now_ms):
        reminder = _reminder(state, now_ms, change)
        state = replace(state, last_reminder_at_ms=now_ms)
        changes.append(reminder)

    if state.status is MonitorStatus.UP and monitor.slow_threshold_ms is not None:
        slow = [name for name in regions if _get(known, name).consecutive_slow >= monitor.failure_threshold]
        fast = [name for name in regions if _get(known, name).consecutive_fast >= monitor.success_threshold]
        if not state.slow and len(slow) >= quorum:
            state = replace(state, slow=True)
            changes.append(change(ChangeKind.SLOW, _slow_reason(known, slow, monitor.slow_threshold_ms)))
        elif state.slow and len(fast) >= quorum and len(slow) < quorum:
            # Cleared silently: there is no "fast again" event type.
            state = replace(state, slow=False)

    return Evaluation(state, tuple(changes))


def due_reminder(state: MonitorState, monitor: MonitorFields, now_ms: int) -> bool:
    """Whether a DOWN monitor is owed a reminder at ``now_ms``."""
    if state.status is not MonitorStatus.DOWN or monitor.repeat_interval is None:
        return False
    since = state.last_reminder_at_ms if state.last_reminder_at_ms is not None else state.down_since_ms
    if since is None:
        return False
    return now_ms >= since + round(monitor.repeat_interval * 1000)


def remind(state: MonitorState, *, monitor: MonitorFields, regions: Sequence[str], now_ms: int) -> Evaluation:
    """The timer-driven path: a REMINDER if one is due, without a new result."""
    if not due_reminder(state, monitor, now_ms):
        return Evaluation(state, accepted=False)

    def change(kind: ChangeKind, reason: str, **extra: Any) -> StateChange:
        return StateChange(
            kind=kind, at_ms=now_ms, reason=reason, regions=_region_statuses(state.regions, regions), **extra
        )

    reminder = _reminder(state, now_ms, change)
    return Evaluation(replace(state, last_reminder_at_ms=now_ms), (reminder,))


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
    if result.status is CheckStatus.DOWN:
        failures = previous.consecutive_failures + 1
        return RegionState(
            consecutive_failures=failures,
            verdict=CheckStatus.DOWN if failures >= monitor.failure_threshold else previous.verdict,
            last_status=CheckStatus.DOWN,
            last_checked_at_ms=result.checked_at_ms,
            last_response_time_ms=result.response_time_ms,
            last_error_class=result.error_class.value if result.error_class else None,
            last_error=result.error,
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
        last_checked_at_ms=result.checked_at_ms,
        last_response_time_ms=result.response_time_ms,
        last_error_class=previous.last_error_class,
        last_error=previous.last_error,
    )


def _get(regions: Mapping[str, RegionState], name: str) -> RegionState:
    return regions.get(name) or RegionState()


def _region_statuses(known: Mapping[str, RegionState], regions: Sequence[str]) -> dict[str, str]:
    return {
        name: known[name].last_status.value  # type: ignore[union-attr]
        for name in regions
        if name in known and known[name].last_status is not None
    }


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
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
