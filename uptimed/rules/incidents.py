"""Incidents as people handle them: acknowledging (from a page, the API or a link in an alert), and the timeline.

Acknowledging is for an open incident nobody has acknowledged yet; it is
stored with who and how, and the evaluator that owns the monitor then stops
the escalation and reminders and tells everyone notified
(:mod:`uptimed.evaluate.evaluator`). Withdrawing it lets them go on.

An acknowledge link (:mod:`uptimed.links`) names its incident and the
integration it was sent to, under a signature: a link with another number
in it is no link (:class:`NotFound`), one for an incident that is over or
already acknowledged, or used before, is refused (:class:`Conflict`).

The timeline of an incident puts in order what happened to it: opened
(with its cause), each notification (step, integration, outcome), each
escalation step, acknowledgements, resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog

from uptimed import links
from uptimed.channels.registry import ChannelRegistry
from uptimed.evaluate.escalation import LINK_ACTOR, acknowledged_by
from uptimed.rules.errors import Conflict, NotFound
from uptimed.store import incidents, integrations, notification_log, signing_keys
from uptimed.store.incidents import IncidentRecord

log = structlog.get_logger()


async def incident(pool: asyncpg.Pool, user_id: int, incident_id: int) -> IncidentRecord:
    """The user's incident (another user's answers :class:`NotFound` too)."""
    found = await incidents.get_for_owner(pool, user_id, incident_id)
    if found is None:
        raise NotFound("incident")
    return found


def _can_acknowledge(found: IncidentRecord) -> None:
    if found.resolved_at is not None:
        raise Conflict("this incident is over: the monitor is up again, so there is nothing to acknowledge")
    if found.acknowledged_at is not None:
        raise Conflict(f"this incident was acknowledged already, by {found.acknowledged_by}")


async def acknowledge(
    pool: asyncpg.Pool, found: IncidentRecord, *, by: str, via: str, integration_id: int | None = None
) -> IncidentRecord:
    """Acknowledge ``found``: :class:`Conflict` if it is over or acknowledged already."""
    _can_acknowledge(found)
    if not await incidents.acknowledge(pool, found.id, by=by, via=via, integration_id=integration_id):
        _can_acknowledge(await _again(pool, found))  # someone was quicker, or it just ended
        raise Conflict("this incident cannot be acknowledged now")
    log.info("incident.acknowledged", incident_id=found.id, monitor_id=found.monitor_id, by=by, via=via)
    return await _again(pool, found)


async def unacknowledge(pool: asyncpg.Pool, found: IncidentRecord, *, by: str, via: str) -> IncidentRecord:
    """Withdraw the acknowledgement of ``found``: its escalation and reminders go on."""
    if found.resolved_at is not None:
        raise Conflict("this incident is over")
    if not await incidents.unacknowledge(pool, found.id, by=by, via=via):
        raise Conflict("this incident is not acknowledged")
    log.info("incident.unacknowledged", incident_id=found.id, monitor_id=found.monitor_id, by=by, via=via)
    return await _again(pool, found)


async def _again(pool: asyncpg.Pool, found: IncidentRecord) -> IncidentRecord:
    again = await incidents.get(pool, found.id)
    if again is None:
        raise NotFound("incident")
    return again


# Acknowledge links


@dataclass(frozen=True)
class LinkedIncident:
    """What an acknowledge link opens: the incident, and to whom the link was sent."""

    incident: IncidentRecord
    integration_id: int
    integration: str
    """The integration as its owner's pages name it (``Webhook #3``); ``a deleted integration``."""
    used: bool
    """The link acknowledged the incident already: it works once."""


async def linked(
    pool: asyncpg.Pool, registry: ChannelRegistry, incident_id: int, integration_id: int, signature: str
) -> LinkedIncident:
    """The incident an acknowledge link is for; :class:`NotFound` for a link uptimed did not make."""
    key = await signing_keys.get_or_create(pool, links.ACK_KEY)
    found = (
        await incidents.get(pool, incident_id)
        if links.ack_signed(key, incident_id, integration_id, signature)
        else None
    )
    if found is None:
        raise NotFound("acknowledge link")
    sent_to = await integrations.get(pool, integration_id)
    name = f"{registry.title(sent_to.type)} #{sent_to.id}" if sent_to is not None else "a deleted integration"
    used = await incidents.link_used(pool, incident_id, integration_id)
    return LinkedIncident(found, integration_id, name, used)


async def acknowledge_by_link(pool: asyncpg.Pool, link: LinkedIncident, *, who: str | None) -> IncidentRecord:
    """Acknowledge from a link, once; ``who`` is the signed-in user opening it, if any."""
    if link.used:
        raise Conflict("this link was used already: it acknowledges once")
    by = who or LINK_ACTOR.format(integration=link.integration)
    return await acknowledge(pool, link.incident, by=by, via="link", integration_id=link.integration_id)


# The timeline


@dataclass(frozen=True)
class Entry:
    """One thing that happened to an incident."""

    at: datetime
    kind: str
    """``opened``, ``notified``, ``escalated``, ``acknowledged``, ``unacknowledged`` or ``resolved``."""
    text: str
    step: int | None = None
    integration_id: int | None = None
    integration: str | None = None
    """``Webhook #3``, for a notification."""
    notification: str | None = None
    """For a notification: ``down``, ``reminder``, ``escalation``, ``acknowledged``, ``up`` or ``slow``."""
    outcome: str | None = None
    """For a notification: ``SENT``, ``PENDING``, ``RETRYING`` or ``FAILED``."""
    attempts: int | None = None
    error: str | None = None
    actor: str | None = None
    via: str | None = None


@dataclass(frozen=True)
class Timeline:
    incident: IncidentRecord
    entries: list[Entry]
    duration_s: float
    """How long it lasted, or has lasted so far."""


def _notification_kind(delivery: notification_log.IncidentDelivery) -> str:
    kind = delivery.event_type.removeprefix("website.").removeprefix("incident.")
    if kind == "down" and delivery.reminder:
        return "reminder"
    return {"escalated": "escalation"}.get(kind, kind)


async def timeline(
    pool: asyncpg.Pool, registry: ChannelRegistry, user_id: int, incident_id: int, *, now: datetime | None = None
) -> Timeline:
    """What happened to the user's incident, oldest first."""
    found = await incident(pool, user_id, incident_id)
    now = now or datetime.now(UTC)
    entries = [Entry(found.opened_at, "opened", f"Down: {found.cause}" if found.cause else "Down")]
    for event in await incidents.events_of(pool, incident_id):
        detail = event.detail
        if event.kind == "escalated":
            step = int(detail.get("step") or 0)
            named = f" ({detail['name']})" if detail.get("name") else ""
            text = f"Step {step} of {detail.get('of', '?')}{named}"
            text += f": repeated ({detail['repeat']})" if detail.get("repeat") else ""
            entries.append(Entry(event.at, "escalated", text, step=step))
        else:
            who = acknowledged_by(event.actor or "someone", event.via or "")
            text = f"Acknowledged by {who}" if event.kind == "acknowledged" else f"Acknowledgement withdrawn by {who}"
            entries.append(Entry(event.at, event.kind, text, actor=event.actor, via=event.via))
    for delivery in await notification_log.for_incident(pool, incident_id):
        kind = _notification_kind(delivery)
        name = f"{registry.title(delivery.integration_type)} #{delivery.integration_id}"
        entries.append(
            Entry(
                delivery.created_at,
                "notified",
                f"{kind.capitalize()} notification to {name}",
                step=delivery.step,
                integration_id=delivery.integration_id,
                integration=name,
                notification=kind,
                outcome=delivery.status,
                attempts=delivery.attempts,
                error=delivery.error_message,
            )
        )
    if found.resolved_at is not None:
        entries.append(Entry(found.resolved_at, "resolved", "Up again: resolved"))
    order = {"opened": 0, "escalated": 1, "notified": 2, "acknowledged": 3, "unacknowledged": 3, "resolved": 4}
    entries.sort(key=lambda e: (e.at, order[e.kind]))
    duration = ((found.resolved_at or now) - found.opened_at).total_seconds()
    return Timeline(found, entries, max(0.0, duration))
