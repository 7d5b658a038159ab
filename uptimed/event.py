"""A state change of a monitor as the world sees it: :class:`MonitorEvent`, published on ``website.events``.

The event keeps the original design's camelCase field names (``websiteId``,
``responseTime``, ...) so consumers written for it keep working.

``website.events`` carries two types besides the original three:
``incident.escalated`` (a step of an escalation policy went out) and
``incident.acknowledged``. A consumer that knows only the original three
skips the others; uptimed's own notifier skips an ``incident.`` type it
does not know (:func:`unknown_incident_event`), so a newer version adding
one breaks no older process.
"""

from __future__ import annotations

import json
import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from uptimed.check import now_ms


class EventType(StrEnum):
    DOWN = "website.down"
    UP = "website.up"
    SLOW = "website.slow"
    ESCALATED = "incident.escalated"
    ACKNOWLEDGED = "incident.acknowledged"


_KNOWN_TYPES = frozenset(t.value for t in EventType)


def unknown_incident_event(raw: bytes | None) -> bool:
    """Whether an event on ``website.events`` is of an ``incident.`` type this version does not know.

    What happens to an incident besides its state changes (a newer uptimed
    may add such types) is not this version's to deliver: a consumer skips
    it. A ``website.`` type it does not know is a state change that would
    need an alert: that stays a bad message, for the dead-letter topic.
    Reads only ``type``.
    """
    try:
        kind = json.loads(raw or b"").get("type")
    except (ValueError, AttributeError):
        return False  # unreadable: validation says why
    return isinstance(kind, str) and kind.startswith("incident.") and kind not in _KNOWN_TYPES


class EscalationStep(BaseModel):
    """On ``incident.escalated`` (and a ``website.down`` that goes out as a policy's first step): the step."""

    model_config = ConfigDict(frozen=True)

    policyId: int | None = None
    policy: str = Field("", description="the policy's name")
    step: int = Field(description="1-based position of the step in the policy")
    steps: int = Field(description="how many steps the policy has")
    name: str = Field("", description="the step's name, if it has one")
    afterSeconds: float = Field(description="the step's delay after the incident's start")
    repeat: int = Field(0, description="0 for the step itself; 1, 2, ... for repeats of the last step")


class MonitorEvent(BaseModel):
    """A state change of a monitor, as published on ``website.events``."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    type: EventType
    websiteId: int
    userId: int
    url: str
    responseTime: float | None = None
    regionId: str | None = None
    timestamp: int = Field(
        default_factory=now_ms, description="when the change happened (the check that completed it), ms since epoch"
    )
    eventId: uuid.UUID = Field(default_factory=uuid.uuid4, description="idempotency key")
    incidentId: int | None = None
    reason: str | None = None
    regions: dict[str, str] = Field(default_factory=dict, description="per-region status")
    reminder: bool = False
    name: str | None = Field(None, description="the monitor's name")
    downtimeSeconds: float | None = Field(None, description="on website.up: how long it was down")
    detectedAt: int | None = Field(None, description="when uptimed decided the change, ms since epoch")
    lateReason: str | None = Field(
        None, description="set when detectedAt is noticeably after timestamp: why it was late"
    )
    integrationIds: list[int] | None = Field(
        None,
        description="with an escalation policy: the only integrations of the owner this event is for; "
        "absent: every integration the monitor routes to",
    )
    escalation: EscalationStep | None = Field(None, description="the escalation step this event sends")
    acknowledgedBy: str | None = Field(None, description="on incident.acknowledged: who took the incident")
    acknowledgedVia: str | None = Field(None, description="on incident.acknowledged: page, api or link")

    @property
    def late_by_s(self) -> float | None:
        """Seconds between the change and its detection, when the event is marked late."""
        if self.lateReason is None or self.detectedAt is None:
            return None
        return max(0, self.detectedAt - self.timestamp) / 1000

    def key(self) -> bytes:
        return str(self.websiteId).encode()
