"""The ``heartbeat`` kind: a job pings uptimed (as Healthchecks.io does it); uptimed notices when it stops.

Nothing is checked on a schedule: each ping to the monitor's ping URL
(``/ping/<token>``, see :mod:`uptimed.probe.pings`) is its check result, and
a missed ping is decided by the evaluator's timer (:mod:`uptimed.evaluate.heartbeat`).
A ping is due ``period`` after the previous one, or at the next time of a
cron expression (in ``timezone``) after it; ``grace`` later it is missed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from uptimed.check import CheckResult, ErrorClass
from uptimed.durations import Duration, format_duration
from uptimed.monitor import Monitor
from uptimed.probe.base import CheckContext

MAX_PERIOD_S = 366 * 86400.0


class HeartbeatOptions(BaseModel):
    """Options of a ``heartbeat`` monitor: when its pings are due."""

    model_config = ConfigDict(extra="forbid")

    period: Duration = Field(
        86400.0,
        description="seconds between pings, or '1h', '1d' (unless cron is set)",
        json_schema_extra={"x-control": "text"},
    )
    grace: Duration = Field(
        3600.0,
        description="seconds a ping may be late before the monitor is down, or '30m'",
        json_schema_extra={"x-control": "text"},
    )
    cron: str | None = Field(
        None, max_length=200, description="when pings are due, as a cron expression ('0 3 * * *'); replaces period"
    )
    timezone: str = Field("UTC", max_length=64, description="the time zone of the cron expression, e.g. Europe/Berlin")

    @field_validator("period", "grace")
    @classmethod
    def _span(cls, value: float) -> float:
        if not 1 <= value <= MAX_PERIOD_S:
            raise ValueError("must be from 1 s to 366 days")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            CronSim(value.strip(), datetime.now(UTC))
        except CronSimError as exc:
            raise ValueError(f"not a cron expression: {exc}") from None
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use a name such as Europe/Berlin or UTC") from None
        return value

    @model_validator(mode="after")
    def _schedule(self) -> HeartbeatOptions:
        if self.cron is not None:
            # A cron expression that never fires again (30 February) would never be late.
            self.expected_after_ms(0)
        return self

    def expected_after_ms(self, last_ping_ms: int) -> int:
        """When the ping after one at ``last_ping_ms`` is due (ms since epoch)."""
        if self.cron is None:
            return last_ping_ms + round(self.period * 1000)
        zone = ZoneInfo(self.timezone)
        start = datetime.fromtimestamp(last_ping_ms / 1000, UTC).astimezone(zone).replace(microsecond=0)
        try:
            following = next(iter(CronSim(self.cron, start)))
        except StopIteration:
            raise ValueError("the cron expression never fires") from None
        return int(following.timestamp() * 1000)

    def deadline_ms(self, last_ping_ms: int) -> int:
        """When the ping after one at ``last_ping_ms`` counts as missed: its due time plus ``grace``."""
        return self.expected_after_ms(last_ping_ms) + round(self.grace * 1000)

    def describe(self) -> str:
        """``"every 1h, 5m grace"`` or ``"0 3 * * * (Europe/Berlin), 1h grace"``."""
        when = f"{self.cron} ({self.timezone})" if self.cron else f"every {format_duration(self.period)}"
        return f"{when}, {format_duration(self.grace)} grace"


class HeartbeatKind:
    """``heartbeat``: the job pings; a missed ping or a reported failure is down."""

    name = "heartbeat"
    title = "Heartbeat (cron job check-in)"
    config_model = HeartbeatOptions
    scheduled = False
    target_help = "optional: what pings, shown in alerts (backup@db1)"

    def target_problem(self, target: str) -> str | None:
        return None

    async def check(self, monitor: Monitor, options: HeartbeatOptions, context: CheckContext) -> CheckResult:
        # Never scheduled, so never called by the probes; a result all the same if something does.
        return context.down(ErrorClass.OTHER, "a heartbeat is not checked: its job pings /ping/<token>")
