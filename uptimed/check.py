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
    LOSS = "loss"
    """Too many ICMP echoes went unanswered."""
    NXDOMAIN = "nxdomain"
    """The name does not exist."""
    SERVFAIL = "servfail"
    """The DNS server could not answer (SERVFAIL, REFUSED, ...)."""
    ANSWER = "answer"
    """An answer arrived but is not the expected one (a DNS record, a query's result, a command's reply)."""
    AUTH = "auth"
    """The target refused the credentials."""
    MISSED = "missed"
    """A heartbeat's ping did not arrive in time."""
    REPORTED = "reported"
    """A heartbeat's job reported a failure (``/fail`` or a non-zero exit status)."""
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
    message: str | None = Field(
        None,
        max_length=2000,
        description="what the check found besides up or down: packet loss, a certificate's issuer, a ping's body",
    )
    checked_at_ms: int = Field(default_factory=now_ms, description="when the check started, ms since epoch")
    scheduled_at_ms: int | None = Field(None, description="when the check was due, ms since epoch")

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.UP

    def key(self) -> bytes:
        return str(self.monitor_id).encode()
