"""What a monitor is: the fields every kind shares and the options of each kind.

The same models validate a ``[[monitors]]`` table in the TOML file, a monitor
created through the API and a row loaded from PostgreSQL, so a value that is
invalid in one place is invalid everywhere, with the same message.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from uptimed.durations import Duration
from uptimed.rules.errors import Across

MIN_INTERVAL_S = 1.0

Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[\w][\w .:/+-]*$")
]
"""A label on monitors (``eu``, ``team:payments``): letters, digits, spaces and ``. : / + - _``."""


class MonitorKind(StrEnum):
    HTTP = "http"
    TCP = "tcp"


class StatusRange(BaseModel):
    """An accepted HTTP status code or an inclusive range of them."""

    model_config = ConfigDict(frozen=True)
    low: int
    high: int

    def __contains__(self, status: int) -> bool:
        return self.low <= status <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def _parse_status(value: object) -> StatusRange:
    if isinstance(value, StatusRange):
        return value
    if isinstance(value, dict):
        return StatusRange.model_validate(value)
    text = str(value).strip()
    match = re.fullmatch(r"([1-5]\d\d)(?:\s*-\s*([1-5]\d\d))?", text)
    if not match:
        raise ValueError(f"expected a status code or range such as 200 or '200-299', got {value!r}")
    low = int(match[1])
    high = int(match[2] or low)
    if high < low:
        raise ValueError(f"status range {text!r} ends before it starts")
    return StatusRange(low=low, high=high)


class HttpOptions(BaseModel):
    """Options of an ``http`` monitor."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field("GET", pattern=r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$")
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = Field(None, max_length=65536)
    accepted_statuses: list[StatusRange] = Field(
        default_factory=lambda: [StatusRange(low=200, high=399)], min_length=1, max_length=32
    )
    follow_redirects: bool = True
    verify_tls: bool = True
    keyword: str | None = Field(None, max_length=1024, description="text the body must contain")
    keyword_absent: str | None = Field(None, max_length=1024, description="text the body must not contain")
    json_path: str | None = Field(
        None, max_length=256, description="dotted path into a JSON body, e.g. 'status' or 'checks.0.ok'"
    )
    json_equals: Any = Field(None, description="value json_path must equal")
    cert_expiry_days: int | None = Field(
        None, ge=1, le=365, description="fail when the TLS certificate expires within this many days"
    )

    @field_validator("accepted_statuses", mode="before")
    @classmethod
    def _statuses(cls, value: object) -> list[StatusRange]:
        items = value if isinstance(value, list) else [value]
        return [_parse_status(item) for item in items]

    @model_validator(mode="after")
    def _json_pair(self) -> Self:
        if self.json_equals is not None and self.json_path is None:
            raise ValueError("json_equals needs json_path")
        return self


class MonitorFields(BaseModel):
    """The fields a monitor has wherever it comes from."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: MonitorKind = MonitorKind.HTTP
    target: str = Field(min_length=1, max_length=2048, description="URL for http, host:port for tcp")
    interval: Duration = Field(60.0, description="seconds between checks, or '30s', '5m'")
    timeout: Duration = Field(10.0, description="seconds a check may take")
    regions: list[str] = Field(
        default_factory=list, max_length=32, description="regions to check from; empty means all configured"
    )
    failure_threshold: int = Field(3, ge=1, le=100)
    success_threshold: int = Field(2, ge=1, le=100)
    quorum: int | None = Field(None, ge=1, le=32, description="regions that must agree; default majority")
    slow_threshold_ms: int | None = Field(None, ge=1, le=600_000)
    repeat_interval: Duration | None = Field(None, description="reminder interval while down")
    escalation_policy_id: int | None = Field(
        None, ge=1, description="the owner's escalation policy to notify by; none: every integration at once"
    )
    enabled: bool = True
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="labels to filter and group by")
    http: HttpOptions = Field(default_factory=HttpOptions)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if value < MIN_INTERVAL_S:
            raise ValueError(f"must be at least {MIN_INTERVAL_S:g} s")
        if value > 86400:
            raise ValueError("must be at most one day")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be positive")
        return value

    @field_validator("repeat_interval")
    @classmethod
    def _repeat(cls, value: float | None) -> float | None:
        if value is not None and value < MIN_INTERVAL_S:
            raise ValueError(f"must be at least {MIN_INTERVAL_S:g} s")
        return value

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a region twice")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))  # a tag given twice counts once, in the order given

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Rules across fields stay on the whole monitor; a form shows each beside the field it names.
        if self.timeout > self.interval:
            raise Across("timeout", f"timeout ({self.timeout:g} s) is longer than interval ({self.interval:g} s)")
        if self.kind is MonitorKind.HTTP:
            parts = urlsplit(self.target)
            if parts.scheme not in ("http", "https"):
                raise Across("target", f"target {self.target!r}: an http monitor needs an http:// or https:// URL")
            if not parts.hostname:
                raise Across("target", f"target {self.target!r}: the URL has no host")
        elif self.kind is MonitorKind.TCP:
            host, sep, port = self.target.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise Across("target", f"target {self.target!r}: a tcp monitor needs host:port")
        return self

    def effective_regions(self, configured: list[str]) -> list[str]:
        """The regions this monitor is checked from."""
        return list(self.regions) if self.regions else list(configured)


class MonitorSpec(MonitorFields):
    """A ``[[monitors]]`` table of the TOML file."""

    owner: str = Field(min_length=1, max_length=64, description="username of the owner")
    key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="stable identity across renames; defaults to the name",
    )
    escalation_policy: str | None = Field(
        None, min_length=1, max_length=200, description="key of the owner's [[escalation_policies]] in this file"
    )

    @field_validator("escalation_policy_id")
    @classmethod
    def _policy_by_key(cls, value: int | None) -> int | None:
        if value is not None:
            raise ValueError("ids are not stable in a config file: name the policy with escalation_policy = KEY")
        return value

    @property
    def stable_key(self) -> str:
        return self.key or self.name


class Monitor(MonitorFields):
    """A monitor as stored: what the scheduler, probes and evaluator work with."""

    # Frozen: list_enabled hands the same object to every refresh while its row is unchanged.
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int
    owner_id: int
    config_key: str | None = None
    """Its key in the config file when declared there (``[[monitors]]``)."""
    notify_integrations: list[int] | None = None
    """The owner's integrations it notifies; None: all of them (see ``store.integrations.for_event``)."""
    badge_key: str | None = None
    """Set when its owner opted in to public badges: the only thing the badges' address names."""

    @property
    def declared_in_file(self) -> bool:
        """Declared in the config file: only the file changes it."""
        return self.config_key is not None
