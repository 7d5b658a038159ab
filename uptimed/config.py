"""The TOML file and ``UPTIMED_*`` environment variables, typed once, here.

Environment variables override the file (``UPTIMED_KAFKA__BOOTSTRAP_SERVERS``
for ``[kafka] bootstrap_servers``). Unknown keys are errors. Every error names
the dotted key path and, where the key is in the file, its line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from uptimed.durations import Duration
from uptimed.escalation_policy import PolicySpec
from uptimed.maintenance import MaintenanceSpec
from uptimed.monitor import MonitorSpec
from uptimed.rules import monitors as monitor_rules
from uptimed.rules.errors import Loc, Located, dotted, problem_of


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(Section):
    dsn: SecretStr = Field(
        SecretStr("postgresql://uptimed@127.0.0.1:5432/uptimed"), description="PostgreSQL connection URL"
    )
    pool_min: int = Field(1, ge=0, le=100)
    pool_max: int = Field(10, ge=1, le=200)
    connect_timeout: Duration = Field(10.0, gt=0)

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: SecretStr) -> SecretStr:
        problem = dsn_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)  # never the DSN itself: it may hold the password
        return value

    @model_validator(mode="after")
    def _pool(self) -> Self:
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min is larger than pool_max")
        return self


def dsn_problem(dsn: str) -> str | None:
    """What is wrong with the form of a PostgreSQL URL, or None (its hosts and ports are read as asyncpg reads them)."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return "must be a postgresql:// URL"
    netloc = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    for host in netloc.split(","):
        if host.startswith("["):
            address, bracket, port = host[1:].partition("]")
            if not bracket or (port and not port.startswith(":")):
                return "has a malformed IPv6 host (write it as [::1]:5432)"
            port = port[1:]
        else:
            address, _, port = host.partition(":")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            return "has a port that is not a number from 1 to 65535"
        if any(ch.isspace() for ch in address):
            return "has a host with spaces in it"
    return None


class RedisSettings(Section):
    url: SecretStr = Field(SecretStr("redis://127.0.0.1:6379/0"), description="redis:// or rediss:// URL")
    key_prefix: str = Field("uptimed:", max_length=64)
    connect_timeout: Duration = Field(5.0, gt=0)


class TopicNames(Section):
    checks: str = "checks"
    events: str = "website.events"
    dead_letters: str = "uptimed.dead-letters"


class KafkaSettings(Section):
    bootstrap_servers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1:9092"], min_length=1)
    client_id: str = "uptimed"
    topics: TopicNames = Field(default_factory=TopicNames)
    manage_topics: bool = Field(True, description="create missing topics at start; false when managed elsewhere")
    partitions: int = Field(6, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=16)
    min_insync_replicas: int | None = Field(None, ge=1, le=16)
    retention: Duration = Field(7 * 86400.0, description="topic retention when uptimed creates topics")
    evaluator_group: str = "uptimed-evaluator"
    notification_group: str = "notification-group"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    request_timeout: Duration = Field(30.0, gt=0)

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port(cls, value: list[str]) -> list[str]:
        for server in value:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _sasl(self) -> Self:
        if self.security_protocol.startswith("SASL") and not (self.sasl_mechanism and self.sasl_username):
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_mechanism and sasl_username")
        return self


class ProbeSettings(Section):
    regions: list[str] = Field(default_factory=lambda: ["default"], min_length=1, max_length=32)
    cluster_regions: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="every region of the cluster (monitors without regions are checked from all); default: regions",
    )
    concurrency: int = Field(100, ge=1, le=10_000)
    buffer_max: int = Field(
        1_000_000,
        ge=1000,
        le=100_000_000,
        description="check results kept per region while Kafka is unreachable; beyond it the oldest are dropped",
    )
    default_interval: Duration = Field(60.0, ge=1)
    default_timeout: Duration = Field(10.0, gt=0)

    @property
    def all_regions(self) -> list[str]:
        return self.cluster_regions or self.regions

    @model_validator(mode="after")
    def _subset(self) -> Self:
        missing = [r for r in self.regions if self.cluster_regions and r not in self.cluster_regions]
        if missing:
            raise ValueError(f"region {missing[0]!r} is not in cluster_regions")
        return self

    @field_validator("regions", "cluster_regions")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for region in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", region):
                raise ValueError(f"region {region!r}: use letters, digits, '-', '_' or '.'")
        if len(set(value)) != len(value):
            raise ValueError("lists a region twice")
        return value


class EvaluateSettings(Section):
    region_silence: float = Field(
        3.0,
        ge=1,
        le=1000,
        description="a region that sent no result for this many of a monitor's intervals stops counting for it",
    )
    max_clock_skew: Duration = Field(
        60.0, ge=1, description="a check result dated further in the future is dead-lettered, not evaluated"
    )


class ApiSettings(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    session_lifetime: Duration = Field(
        14 * 86400.0, ge=300, le=366 * 86400, description="a web sign-in ends after this long unused"
    )
    secure_cookies: Literal["auto", "always", "never"] = Field(
        "auto", description="auto: Secure cookies when the page was requested over https"
    )
    page_refresh: Duration = Field(10.0, ge=1, le=3600, description="how often open pages update themselves")
    public_url: str | None = Field(
        None,
        max_length=500,
        description="the address users reach these pages at (https://uptime.example.com); alerts link to it. "
        "Without it alerts carry no links",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or a fragment")
        return value.strip().rstrip("/")

    request_timeout: Duration = Field(
        10.0, ge=1, le=600, description="a request (headers and body) must arrive whole within this, or is dropped"
    )
    max_connections_per_client: int = Field(
        32,
        ge=0,
        le=100_000,
        description="connections one client address may hold open at once (0: no limit, e.g. behind a proxy)",
    )


class SmtpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    tls: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="none (port 25), starttls (587) or tls, implicit TLS (465)"
    )
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = "uptimed@localhost"
    timeout: Duration = Field(30.0, gt=0)
    cafile: Path | None = Field(None, description="extra CA bundle to verify the server with")


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON lines otherwise"
    )


class IntegrationSpec(Section):
    """An ``[[integrations]]`` table: a notification channel of a user, declared in the file."""

    owner: str = Field(min_length=1, max_length=64, description="username of the owner")
    key: str = Field(min_length=1, max_length=200, description="stable identity of this integration")
    name: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="what the pages and the log call it; default: type and destination",
    )
    type: str = Field(min_length=1, max_length=64, description="channel name, e.g. webhook, slack, or a plugin's")
    config: dict[str, Any] = Field(default_factory=dict, description="validated by the channel's own model")
    enabled: bool = True
    monitors: list[str] | None = Field(
        None,
        min_length=1,
        description="keys of the owner's config monitors to notify about; default: all of the owner's",
    )


class NotifySettings(Section):
    max_attempts: int = Field(6, ge=1, le=50, description="delivery attempts before FAILED")
    backoff_initial: Duration = Field(2.0, gt=0, description="first retry delay; doubles each attempt, with jitter")
    backoff_max: Duration = Field(600.0, gt=0)
    delivery_timeout: Duration = Field(15.0, gt=0, description="one delivery attempt may take this long")
    concurrency: int = Field(200, ge=1, le=10_000, description="deliveries in flight at once")
    per_channel_concurrency: int = Field(50, ge=1, le=10_000, description="in flight at once per channel type")
    connections_per_destination: int = Field(
        10,
        ge=1,
        le=1000,
        description="connections open at once to one host:port; more requests wait, so one slow host cannot use up the pool",
    )
    deliveries_per_user: int = Field(
        20,
        ge=1,
        le=10_000,
        description="deliveries to one user's integrations in flight at once (not the config file's); "
        "more wait their turn, so one user's slow destinations cannot hold every delivery slot",
    )


class SecuritySettings(Section):
    """What monitors and integrations made through the API or the pages may reach (:mod:`uptimed.rules.targets`)."""

    allow_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        max_length=1000,
        description="networks users' monitors and integrations may reach beyond the public internet, e.g. 10.0.0.0/8",
    )
    allow_all_networks: bool = Field(
        False,
        description="every network (a single-team install whose users are all trusted); uptimed's own services stay closed",
    )


class QuotaSettings(Section):
    """Limits of each user, for what is made through the API or the pages (the config file is not counted)."""

    monitors_per_user: int = Field(1000, ge=0, le=1_000_000, description="monitors one user may have")
    integrations_per_user: int = Field(100, ge=0, le=100_000, description="integrations one user may have")
    min_interval: Duration = Field(30.0, ge=1, le=86400, description="the shortest interval of a user's monitor")
    test_sends_per_minute: int = Field(10, ge=1, le=10_000, description="test notifications one user may send")
    api_requests_per_minute: int = Field(600, ge=1, le=1_000_000, description="requests one API token may make")


class RetentionSettings(Section):
    checks: Duration = Field(
        35 * 86400.0, ge=86400, description="raw checks (history, charts); uptime keeps its hourly roll-up forever"
    )
    notifications: Duration = Field(
        90 * 86400.0, ge=86400, description="delivered and failed entries of the notification log"
    )


class Settings(BaseSettings):
    """The whole configuration of one uptimed process."""

    model_config = SettingsConfigDict(env_prefix="UPTIMED_", env_nested_delimiter="__", extra="forbid")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    evaluate: EvaluateSettings = Field(default_factory=EvaluateSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    monitors: list[MonitorSpec] = Field(default_factory=list)
    integrations: list[IntegrationSpec] = Field(default_factory=list)
    maintenance: list[MaintenanceSpec] = Field(default_factory=list)
    escalation_policies: list[PolicySpec] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file; the file arrives as init kwargs.
        return env_settings, init_settings

    @model_validator(mode="after")
    def _monitors(self) -> Self:
        check_declared(self.monitors, self.integrations, self.maintenance, self.probe.all_regions)
        check_policies(self.escalation_policies, self.integrations, self.monitors)
        return self


def check_policies(
    escalation_policies: list[PolicySpec], integrations: list[IntegrationSpec], monitors: list[MonitorSpec]
) -> None:
    """Each policy's integrations and each monitor's policy are the owner's, in this file."""
    declared = {(integration.owner, integration.key) for integration in integrations}
    policies = _distinct("escalation_policies", [(p.owner, p.key) for p in escalation_policies], "escalation policies")
    for index, policy in enumerate(escalation_policies):
        for number, step in enumerate(policy.steps):
            for key in step.integrations:
                if (policy.owner, key) not in declared:
                    raise Located(
                        ("escalation_policies", index, "steps", number, "integrations"),
                        f"{policy.owner!r} has no integration with key {key!r} in this file",
                    )
    for index, spec in enumerate(monitors):
        if spec.escalation_policy is not None and (spec.owner, spec.escalation_policy) not in policies:
            raise Located(
                ("monitors", index, "escalation_policy"),
                f"{spec.owner!r} has no escalation policy with key {spec.escalation_policy!r} in this file",
            )


def check_declared(
    monitors: list[MonitorSpec],
    integrations: list[IntegrationSpec],
    maintenance: list[MaintenanceSpec],
    regions: list[str],
) -> None:
    """The rules across ``[[monitors]]``, ``[[integrations]]`` and ``[[maintenance]]``: keys unique per owner,
    each monitor they name declared beside them, regions and quorum this cluster can give.

    Raises :class:`~uptimed.rules.errors.Located` at the first problem.
    """
    seen: set[tuple[str, str]] = set()
    for index, spec in enumerate(monitors):
        # The API's and the pages' rules too: regions, quorum, reminder interval.
        for problem in monitor_rules.problems(spec, regions):
            raise Located(("monitors", index, *problem.loc), problem.msg)
        identity = (spec.owner, spec.stable_key)
        if identity in seen:
            raise Located(
                ("monitors", index, "key"), f"two monitors of {spec.owner!r} share the key {spec.stable_key!r}"
            )
        seen.add(identity)
    keys = {(spec.owner, spec.stable_key) for spec in monitors}
    _distinct("integrations", [(i.owner, i.key) for i in integrations], "integrations")
    for index, integration in enumerate(integrations):
        for key in integration.monitors or []:
            if (integration.owner, key) not in keys:
                raise Located(
                    ("integrations", index, "monitors"),
                    f"{integration.owner!r} has no monitor with key {key!r} in this file",
                )
    _distinct("maintenance", [(w.owner, w.stable_key) for w in maintenance], "maintenance windows")
    for index, window in enumerate(maintenance):
        for key in window.monitors:
            if (window.owner, key) not in keys:
                raise Located(
                    ("maintenance", index, "monitors"),
                    f"{window.owner!r} has no monitor with key {key!r} in this file",
                )


def _distinct(section: str, identities: list[tuple[str, str]], what: str) -> set[tuple[str, str]]:
    """The (owner, key) of each entry of ``section``; :class:`Located` at the first key its owner uses twice."""
    seen: set[tuple[str, str]] = set()
    for index, (owner, key) in enumerate(identities):
        if (owner, key) in seen:
            raise Located((section, index, "key"), f"two {what} of {owner!r} share the key {key!r}")
        seen.add((owner, key))
    return seen


class Declared(BaseModel):
    """A file of only ``[[monitors]]``, ``[[integrations]]``, ``[[maintenance]]`` and ``[[escalation_policies]]``:
    what ``uptimed export`` writes."""

    model_config = ConfigDict(extra="forbid")

    monitors: list[MonitorSpec] = Field(default_factory=list)
    integrations: list[IntegrationSpec] = Field(default_factory=list)
    maintenance: list[MaintenanceSpec] = Field(default_factory=list)
    escalation_policies: list[PolicySpec] = Field(default_factory=list)


def parse_declared(text: str, path: Path, regions: list[str]) -> Declared:
    """An export file read and checked as a whole, as the config file is; :class:`ConfigError` with every line."""
    data = _toml(text, path)
    lines = key_lines(text)

    class Checked(Declared):
        @model_validator(mode="after")
        def _across(self) -> Self:
            check_declared(self.monitors, self.integrations, self.maintenance, regions)
            check_policies(self.escalation_policies, self.integrations, self.monitors)
            return self

    try:
        return Checked(**data)
    except ValidationError as exc:
        raise ConfigError(path, [_problem(error, lines) for error in exc.errors(include_url=False)]) from None


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file."""

    key: str
    message: str
    line: int | None = None
    column: int | None = None

    def render(self, path: Path) -> str:
        where = f"{path}:{self.line}" if self.line else str(path)
        if self.column:
            where += f":{self.column}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """The config file cannot be used; ``problems`` says why, each with its key and line."""

    def __init__(self, path: Path, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(p.render(path) for p in problems))


def load_settings(path: str | Path) -> Settings:
    """Read, parse and validate a config file. Raises :class:`ConfigError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem("", f"cannot read the file: {exc.strerror or exc}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        problem = ConfigProblem("", f"not UTF-8 text (byte {raw[exc.start]:#04x}); save the file as UTF-8", line)
        raise ConfigError(path, [problem]) from None
    return parse_settings(text, path)


def _toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(path, [ConfigProblem("", "TOML syntax error: nested too deeply")]) from None
    except tomllib.TOMLDecodeError as exc:
        line, column = _decode_position(str(exc))
        if line is None and "end of document" in str(exc):
            line = max(text.count("\n"), 1)
        message = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)$", "", str(exc))
        raise ConfigError(path, [ConfigProblem("", f"TOML syntax error: {message}", line, column)]) from exc


def parse_settings(text: str, path: Path = Path("<config>")) -> Settings:
    data = _toml(text, path)
    lines = key_lines(text)
    try:
        return Settings(**data)
    except RecursionError:
        raise ConfigError(path, [ConfigProblem("", "a value is nested too deeply")]) from None
    except ValidationError as exc:
        problems = [_problem(error, lines) for error in exc.errors(include_url=False)]
        raise ConfigError(path, problems) from None


def _problem(error: ErrorDetails, lines: dict[Loc, int]) -> ConfigProblem:
    found = problem_of(error)
    loc, message = found.loc, found.msg
    across_keys = isinstance((error.get("ctx") or {}).get("error"), Located)  # its message says it all
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif not across_keys and "input" in error and not _secret_loc(loc) and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return ConfigProblem(dotted(loc), message, line_of(loc, lines))


def _secret_loc(loc: Loc) -> bool:
    return any(isinstance(p, str) and p in ("dsn", "url", "password", "sasl_password") for p in loc)


def line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of key path ``loc`` in a file whose :func:`key_lines` are ``lines``.

    The key itself, else the closest enclosing table the file declares.
    """
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _decode_position(message: str) -> tuple[int | None, int | None]:
    match = re.search(r"at line (\d+), column (\d+)", message)
    return (int(match[1]), int(match[2])) if match else (None, None)


_TABLE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")


def _key_parts(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(r"\"[^\"]*\"|'[^']*'|[^.]+", text)]


def key_lines(text: str) -> dict[Loc, int]:
    """Map each key path the file declares to its line (1-based).

    A line-oriented reading that covers tables, arrays of tables and dotted
    keys; keys inside inline tables and multi-line strings resolve to the
    enclosing key, which is precise enough to point a user at the right line.
    """
    found: dict[Loc, int] = {}
    array_counts: dict[Loc, int] = {}
    table: Loc = ()
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        if match := _TABLE.match(line):
            names = _key_parts(match[2])
            path: Loc = ()
            # Resolve earlier array-of-tables segments to their latest element.
            for name in names[:-1]:
                path = (*path, name)
                if path in array_counts:
                    path = (*path, array_counts[path] - 1)
            path = (*path, names[-1])
            if match[1] == "[[":
                index = array_counts.get(path, 0)
                array_counts[path] = index + 1
                found.setdefault(path, number)
                path = (*path, index)
            found[path] = number
            table = path
            continue
        if match := _KEY.match(line):
            found[(*table, *_key_parts(match[1]))] = number
            rest = line[match.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return found
