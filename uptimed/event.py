"""A state change of a monitor as the world sees it: :class:`MonitorEvent`, published on ``website.events``.

The event keeps the original design's camelCase field names (``websiteId``,
``responseTime``, ...) so consumers written for it keep working.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from uptimed.check import now_ms


class EventType(StrEnum):
    DOWN = "website.down"
    UP = "website.up"
    SLOW = "website.slow"


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

    @property
    def late_by_s(self) -> float | None:
        """Seconds between the change and its detection, when the event is marked late."""
        if self.lateReason is None or self.detectedAt is None:
            return None
        return max(0, self.detectedAt - self.timestamp) / 1000

    def key(self) -> bytes:
        return str(self.websiteId).encode()
