"""What a monitor is: the fields every kind shares and the options of each kind.

The same models validate a ``[[monitors]]`` table in the TOML file, a monitor
created through the API and a row loaded from PostgreSQL, so a value that is
invalid in one place is invalid everywhere, with the same message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails

from uptimed.durations import Duration
from uptimed.rules.errors import Across

MIN_INTERVAL_S = 1.0

Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[\w][\w .:/+-]*$")
]
"""A label on monitors (``eu``, ``team:payments``): letters, digits, spaces and ``. : / + - _``."""


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
    """Options of an ``http`` monitor (frozen: monitors with the same options share one, see :func:`shared_http`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict, description="request headers")
    body: str | None = Field(
        None, max_length=65536, description="request body", json_schema_extra={"x-control": "textarea"}
    )
    accepted_statuses: list[StatusRange] = Field(
        default_factory=lambda: [StatusRange(low=200, high=399)],
        min_length=1,
        max_length=32,
        description="status codes and ranges that are up: 200-399, 418",
        json_schema_extra={"x-control": "list"},
    )
    follow_redirects: bool = True
    verify_tls: bool = Field(True, description="verify the TLS certificate", title="Verify TLS certificates")
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
        # "200-299, 418" is two, as a line of the form or a string in the file.
        parts = [part for item in items for part in (item.split(",") if isinstance(item, str) else [item])]
        return [_parse_status(part) for part in parts if not isinstance(part, str) or part.strip()]

    @model_validator(mode="after")
    def _json_pair(self) -> Self:
        if self.json_equals is not None and self.json_path is None:
            raise ValueError("json_equals needs json_path")
        return self


SHARED_MAX = 1024
"""Distinct values kept to share per table below; past that, a table starts again."""
K = TypeVar("K")
V = TypeVar("V")
_SHARED_HTTP: dict[str, HttpOptions] = {}
_SHARED_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


def _shared(table: dict[K, V], key: K, value: V) -> V:
    """The one copy of ``value`` kept under ``key`` (``value`` itself the first time)."""
    shared = table.get(key)
    if shared is None:
        if len(table) >= SHARED_MAX:
            table.clear()  # many distinct ones: sharing saves little; start again
        shared = table[key] = value
    return shared


def shared_http(options: HttpOptions) -> HttpOptions:
    """One copy of each distinct set of HTTP options, however many monitors have it (most have the defaults).

    A copy is about 1.5 KiB: 15 MiB of a daemon's memory at 10,000 monitors (issue 18).
    """
    return _shared(_SHARED_HTTP, options.model_dump_json(), options)


PUSH_REGION = "push"
"""The one region of a monitor whose results are pushed (a heartbeat): pings arrive wherever they are sent."""

KIND_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"

_PUSHED: set[str] = set()
"""Kinds whose results are pushed (heartbeat), as validation found them: a set, read on the hot path."""

REVEAL_SECRETS = {"secrets": "reveal"}
"""``model_dump_json(context=REVEAL_SECRETS)``: a kind's secrets in clear (for the work queue, never for people)."""


class MonitorFields(BaseModel):
    """The fields a monitor has wherever it comes from.

    ``kind`` names an installed kind (:mod:`uptimed.probe.kinds`); the options
    of a kind are under its name (``http = {...}``, ``dns = {...}``) and are
    validated by the kind's own ``config_model``. ``http`` is always there
    (the original API had it on every monitor); the options of the monitor's
    own kind are filled with their defaults when not given.
    """

    # Extra keys are the options of kinds; anything else is refused (see _kind_options).
    model_config = ConfigDict(extra="allow")
    _strict: ClassVar[bool] = True
    """Refuse unknown kinds and keys (input); a stored monitor keeps what a removed plugin left."""

    name: str = Field(min_length=1, max_length=200)
    kind: str = Field("http", pattern=KIND_PATTERN, description="an installed kind: GET /api/v1/kinds lists them")
    target: str = Field(
        "",
        max_length=2048,
        description="what is checked: a URL for http, host:port for tcp, a name for dns (each kind says)",
    )
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
    http: HttpOptions = Field(default_factory=lambda: shared_http(HttpOptions()))

    @model_validator(mode="wrap")
    @classmethod
    def _kind_options(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """Validate each kind's options with its own model, with their locations (``("dns", "record")``)."""
        if not isinstance(data, Mapping):
            return handler(data)
        declared = cls.model_fields
        kind = data.get("kind", "http")
        if kind == "http" and all(key in declared for key in data):
            return handler(data)  # the common case, kept fast: list_enabled validates thousands of these
        from uptimed.probe.kinds import default_kinds  # the registry loads kinds, which import this module

        kinds = default_kinds()
        rest = {key: value for key, value in data.items() if key in declared}
        errors: list[InitErrorDetails] = []
        parsed: dict[str, Any] = {}
        known = isinstance(kind, str) and kind in kinds
        if cls._strict and isinstance(kind, str) and not known and re.fullmatch(KIND_PATTERN, kind):
            message = str(_unknown_kind(kind, kinds))
            errors.append(_error("value_error", ("kind",), kind, message))
        options = {key: value for key, value in data.items() if key not in declared}
        if known and kind != "http" and kind not in options:
            options[kind] = {}  # the model's defaults (or its complaint about a required option)
        for key, raw in options.items():
            if key not in kinds:
                if cls._strict:
                    errors.append(InitErrorDetails(type="extra_forbidden", loc=(key,), input=raw))
                elif key == kind:
                    parsed[key] = raw  # a removed plugin's options: kept as they are
                continue
            try:
                parsed[key] = kinds.get(key).kind.config_model.model_validate(raw)
            except ValidationError as exc:
                if cls._strict:
                    errors += [_within(key, error) for error in exc.errors(include_url=False)]
                elif key == kind:
                    parsed[key] = raw  # no longer valid for the installed version: the probe says so
        if known and not kinds.get(kind).scheduled:
            _PUSHED.add(kind)
            # A pushed kind has one region and no streaks: one missed or failed ping is down, one good ping up.
            rest.update(failure_threshold=1, success_threshold=1, regions=[], quorum=None)
        try:
            fields = handler(rest)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(
                cls.__name__, [*map(_again, exc.errors(include_url=False)), *errors]
            ) from None
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        if fields.__pydantic_extra__ is None:
            fields.__pydantic_extra__ = {}
        fields.__pydantic_extra__.update(parsed)
        return fields

    @field_validator("http")
    @classmethod
    def _shared_http(cls, value: HttpOptions) -> HttpOptions:
        return shared_http(value)

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
        from uptimed.probe.kinds import default_kinds

        kinds = default_kinds()
        if self.kind in kinds:
            problem = kinds.target_problem(self.kind, self.target)
            if problem is not None:
                raise Across("target", problem)  # never the target itself: it may hold a password
        return self

    # No return annotation on purpose: with one, pydantic documents the output as that type, not as the model.
    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo):  # type: ignore[no-untyped-def]
        """In JSON, each kind's secrets are masked (``…cdef``), or in clear with ``context={"secrets": "reveal"}``."""
        data = handler(self)
        if info.mode_is_json() and self.__pydantic_extra__:
            from uptimed.channels.registry import redacted_config, storable_config

            reveal = info.context == REVEAL_SECRETS
            shown = storable_config if reveal else redacted_config
            for key, value in self.__pydantic_extra__.items():
                if isinstance(value, BaseModel) and key in data:
                    data[key] = shown(value)
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """The schema lists the options of every installed kind, each from its kind's model."""
        from uptimed.probe.kinds import default_kinds

        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        properties = target.setdefault("properties", {})
        kinds = default_kinds()
        for name in kinds.names():
            if name not in properties:
                model = kinds.get(name).kind.config_model
                properties[name] = {
                    **handler(model.__pydantic_core_schema__),
                    "description": f"options of a {name} monitor",
                }
        properties["kind"] = {**properties.get("kind", {}), "enum": kinds.names()}
        target["additionalProperties"] = False
        return schema

    @property
    def options(self) -> BaseModel | None:
        """The options of this monitor's kind, an instance of its ``config_model`` (None: they no longer fit it)."""
        return self.options_for(self.kind)

    def options_for(self, kind: str) -> BaseModel | None:
        """The options this monitor holds for ``kind``, if any."""
        if kind == "http":
            return self.http
        value = (self.__pydantic_extra__ or {}).get(kind)
        return value if isinstance(value, BaseModel) else None

    def kind_options(self) -> dict[str, BaseModel | Any]:
        """Every kind's options this monitor holds (the extra keys), by kind name."""
        return dict(self.__pydantic_extra__ or {})

    @property
    def scheduled(self) -> bool:
        """Checked on a schedule; False for a pushed kind (heartbeat)."""
        return self.kind not in _PUSHED

    def effective_regions(self, configured: list[str]) -> list[str]:
        """The regions this monitor is checked from (a pushed kind: the one ``PUSH_REGION``)."""
        if self.kind in _PUSHED:
            return [PUSH_REGION]
        return list(self.regions) if self.regions else list(configured)


def _unknown_kind(kind: str, kinds: Any) -> Exception:
    from uptimed.probe.kinds import UnknownKindError

    try:
        kinds.get(kind)
    except UnknownKindError as exc:
        return exc
    return LookupError(kind)


def _error(type_: str, loc: tuple[str | int, ...], value: Any, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=type_, loc=loc, input=value, ctx={"error": ValueError(message)})


def _within(key: str, error: Any) -> InitErrorDetails:
    """An error of a kind's options, placed under the kind's key."""
    return _again({**error, "loc": (key, *error["loc"])})


def _again(error: Any) -> InitErrorDetails:
    """A pydantic error as the details of a new ValidationError, with its type and context kept."""
    details = InitErrorDetails(type=error["type"], loc=tuple(error["loc"]), input=error.get("input"))
    if error.get("ctx"):
        details["ctx"] = error["ctx"]
    return details


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
    model_config = ConfigDict(extra="allow", frozen=True)
    _strict: ClassVar[bool] = False

    id: int
    owner_id: int
    config_key: str | None = None
    """Its key in the config file when declared there (``[[monitors]]``)."""
    notify_integrations: list[int] | None = None
    """The owner's integrations it notifies; None: all of them (see ``store.integrations.for_event``)."""
    badge_key: str | None = None
    """Set when its owner opted in to public badges: the only thing the badges' address names."""
    ping_token: str | None = None
    """A pushed kind's (heartbeat's) secret: its ping URL is ``/ping/<ping_token>``."""

    @property
    def declared_in_file(self) -> bool:
        """Declared in the config file: only the file changes it."""
        return self.config_key is not None

    @model_validator(mode="after")
    def _shared_fields_set(self) -> Self:
        """Monitors given the same fields share one record of which they were (pydantic keeps a set per object).

        That set is 2.2 KiB, 22 MiB of a daemon's memory at 10,000 monitors (issue 18). Sharing it is safe because
        a Monitor is frozen: nothing adds to its set, and ``model_copy`` copies the set before it updates it.
        """
        given = self.__pydantic_fields_set__
        object.__setattr__(self, "__pydantic_fields_set__", _shared(_SHARED_FIELDS_SETS, frozenset(given), given))
        return self
