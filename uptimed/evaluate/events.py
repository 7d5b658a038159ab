"""From a ``StateChange`` to the ``MonitorEvent`` published on ``website.events``.

Pure, like the state machine. The event id is derived from the change, not
drawn at random: replaying the same check results after a crash produces the
same changes and so the same ids, which the notifier's idempotency key on
(event id, integration id) then drops.
"""

from __future__ import annotations

import uuid

from uptimed.evaluate.escalation import FiredStep
from uptimed.evaluate.state import ChangeKind, StateChange
from uptimed.event import EscalationStep, EventType, MonitorEvent
from uptimed.monitor import Monitor
from uptimed.rules.credentials import public_target

EVENT_ID_NAMESPACE = uuid.UUID("1e822d88-0a7c-4c42-8746-47501cd093d0")

LATE_AFTER_MS = 10_000
"""A change decided this long after it happened is announced as late, with the reason."""

_EVENT_TYPES = {
    ChangeKind.DOWN: EventType.DOWN,
    ChangeKind.UP: EventType.UP,
    ChangeKind.SLOW: EventType.SLOW,
    ChangeKind.REMINDER: EventType.DOWN,
    ChangeKind.ESCALATED: EventType.ESCALATED,
    ChangeKind.ACKNOWLEDGED: EventType.ACKNOWLEDGED,
}


def event_id_for(change: StateChange, monitor_id: int) -> uuid.UUID:
    """A stable id for ``change``: the same monitor, kind and triggering result give the same id."""
    if change.region is not None and change.checked_at_ms is not None:
        trigger = f"{change.region}@{change.checked_at_ms}"
    elif change.kind is ChangeKind.REMINDER and change.sequence is not None:
        # The n-th reminder of an incident, whoever fires it and whenever.
        trigger = f"incident@{change.incident_opened_at_ms}#{change.sequence}"
    elif change.kind is ChangeKind.ESCALATED and change.step is not None:
        # Step n of an incident (and its k-th repeat): once, whoever fires it and whenever.
        trigger = f"incident@{change.incident_opened_at_ms}#step{change.step.number}"
        if change.step.repeat:
            trigger += f"r{change.step.repeat}"
        if change.step.since_ms is not None:  # the steps again after a maintenance window: new events
            trigger += f"@{change.step.since_ms}"
    elif change.kind is ChangeKind.ACKNOWLEDGED and change.acknowledgement is not None:
        # Each acknowledgement of an incident (it may be withdrawn and given again) is its own event.
        trigger = f"incident@{change.incident_opened_at_ms}/ack@{change.acknowledgement.at_ms}"
    else:
        trigger = f"timer@{change.at_ms}"
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{monitor_id}/{change.kind.value}/{trigger}")


def event_for(
    change: StateChange,
    monitor: Monitor,
    detected_at_ms: int,
    incident_id: int | None = None,
    *,
    event_id: uuid.UUID | None = None,
    late_reason: str | None = None,
) -> MonitorEvent:
    """The event announcing ``change`` of ``monitor``, decided at ``detected_at_ms``.

    Its ``timestamp`` is when the change happened (``change.at_ms``: the check
    that completed it); ``detectedAt`` is when uptimed decided it. When the two
    are more than :data:`LATE_AFTER_MS` apart the event says so, with
    ``late_reason`` (why it was late, if known). ``incident_id`` is needed for
    DOWN (the id the store just assigned); for the others it defaults to
    the id carried by the change. A REMINDER is published as ``website.down``
    with ``reminder=True``; ESCALATED and ACKNOWLEDGED as ``incident.escalated``
    and ``incident.acknowledged``. A change with an ``audience`` (a monitor
    with an escalation policy) lists its integrations in ``integrationIds``.
    """
    late = detected_at_ms - change.at_ms > LATE_AFTER_MS
    return MonitorEvent(
        type=_EVENT_TYPES[change.kind],
        websiteId=monitor.id,
        userId=monitor.owner_id,
        url=public_target(monitor.target),  # never the URL's password nor a token in its query
        responseTime=change.response_time_ms,
        regionId=change.region,
        timestamp=change.at_ms,
        detectedAt=detected_at_ms,
        lateReason=(late_reason or "uptimed was catching up") if late else None,
        eventId=event_id or event_id_for(change, monitor.id),
        incidentId=incident_id if incident_id is not None else change.incident_id,
        reason=change.reason,
        regions=dict(change.regions),
        reminder=change.kind is ChangeKind.REMINDER,
        name=monitor.name,
        downtimeSeconds=change.downtime_s if change.kind is ChangeKind.UP else None,
        integrationIds=list(change.audience) if change.audience is not None else None,
        escalation=_step(change.step) if change.step is not None else None,
        acknowledgedBy=change.acknowledgement.by if change.acknowledgement else None,
        acknowledgedVia=change.acknowledgement.via if change.acknowledgement else None,
    )


def _step(step: FiredStep) -> EscalationStep:
    return EscalationStep(
        policyId=step.policy_id,
        policy=step.policy_name,
        step=step.number,
        steps=step.of,
        name=step.name,
        afterSeconds=step.after_ms / 1000,
        repeat=step.repeat,
    )
