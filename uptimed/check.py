"""What one check of a monitor found: :class:`CheckResult`, its status and the class of its error.

A probe returns one (see ``probe/kinds.py``); it travels on the
``checks`` topic to the evaluator and is stored in ``checks``.
"""

from __future__ import annotations

import time
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
    """Now, in milliseconds since the epoch: how results and events tell time."""
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
