"""The messages on uptimed's Kafka topics.

``CheckResult`` travels on ``checks``; ``MonitorEvent`` on ``website.events``.
The event keeps the original design's camelCase field names (``websiteId``,
``responseTime``, ...) so consumers written for it keep working.
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class CheckStatus(StrEnum):
    UP = "up"
    DOWN = "down"


class ErrorClass(StrEnum):
    """Why a check failed, coarse enough to group and alert on."""

    DNS = "dns"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    TLS = "tls"
    STATUS = "status"
    KEYWORD = "keyword"
    JSON = "json"
    CERT_EXPIRY = "cert_expiry"
    OTHER = "other"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class CheckResult(BaseModel):
    """One check of one monitor from one region."""

    model_config = ConfigDict(frozen=True)

    monitor_id: int
    region: str
    status: CheckStatus
    response_time_ms: float | None = None
    status_code: int | None = None
    error_class: ErrorClass | None = None
    error: str | None = Field(None, max_length=2000)
    checked_at_ms: int = Field(default_factory=now_ms, description="when the check started, ms since epoch")
    scheduled_at_ms: int | None = Field(None, description="when the check was due, ms since epoch")

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.UP

    def key(self) -> bytes:
        return str(self.monitor_id).encode()


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
