"""The one interface every channel implements, built-in or plugin.

A channel is a small object with a ``name``, a pydantic ``config_model`` that
validates an integration's config when it is created, and ``async send``. It
formats its own messages (see :func:`headline` for the shared wording) and
tells retryable failures from permanent ones by the exception it raises.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, SupportsFloat, runtime_checkable

import httpx
from pydantic import BaseModel, SecretStr, WithJsonSchema

from uptimed.channels.schema import secret_values
from uptimed.durations import format_duration
from uptimed.event import EventType, MonitorEvent
from uptimed.rules.targets import TRUSTED, TargetPolicy, TargetRefused

if TYPE_CHECKING:
    from uptimed.config import SmtpSettings

Secret = Annotated[
    SecretStr,
    WithJsonSchema({"type": "string", "format": "password", "writeOnly": True}),
]
"""A config field that is a secret: stored, used, never logged or returned in clear."""


class NotificationKind(StrEnum):
    """What a notification says. New kinds may be added: a channel falls back to :func:`headline` for one it does not know."""

    DOWN = "down"
    UP = "up"
    SLOW = "slow"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    """Still down, and an escalation policy's step brings it to this integration."""
    ACKNOWLEDGED = "acknowledged"
    """Someone took the incident (``event.acknowledgedBy``)."""
    TEST = "test"

    @classmethod
    def of(cls, event: MonitorEvent) -> NotificationKind:
        if event.type is EventType.UP:
            return cls.UP
        if event.type is EventType.SLOW:
            return cls.SLOW
        if event.type is EventType.ESCALATED:
            return cls.ESCALATION
        if event.type is EventType.ACKNOWLEDGED:
            return cls.ACKNOWLEDGED
        return cls.REMINDER if event.reminder else cls.DOWN


@dataclass(frozen=True)
class Links:
    """Where the reader of an alert goes next (set only with ``[api] public_url``)."""

    monitor: str | None = None
    incident: str | None = None
    acknowledge: str | None = None
    """A signed link that acknowledges the incident from the alert (down, reminder and escalation alerts)."""


@dataclass(frozen=True, kw_only=True)
class Notification:
    """One event to deliver through one integration."""

    kind: NotificationKind
    event: MonitorEvent
    config: Any
    """The integration's config, an instance of the channel's ``config_model``."""
    http: httpx.AsyncClient
    """Shared client for HTTP deliveries (timeouts and pooling set by the notifier)."""
    smtp: SmtpSettings | None = None
    """The ``[smtp]`` section, for channels that send mail."""
    integration_id: int | None = None
    attempt: int = 1
    """Which attempt this is for (event, integration): 2 and up are retries, possibly of a request that arrived."""
    links: Links = Links()
    """Links to the monitor, the incident and the acknowledge page; none without ``[api] public_url``."""
    policy: TargetPolicy = TRUSTED
    """What this integration may connect to. ``http`` enforces it already; a channel that opens
    connections of its own resolves with ``policy.resolve(host, port)`` and connects only to what it returns."""

    @property
    def monitor_name(self) -> str:
        return self.event.name or self.event.url


class DeliveryError(Exception):
    """A delivery did not succeed. ``retry_after`` is what the service asked for, in seconds."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class RetryableDeliveryError(DeliveryError):
    """Worth trying again later: 5xx, 408, 429, timeouts, connection errors."""


class PermanentDeliveryError(DeliveryError):
    """Trying again cannot help: a bad config, a gone webhook, a 4xx other than 408/429."""

    retryable = False


@runtime_checkable
class Channel(Protocol):
    """What ``uptimed.channels`` entry points name (a class or an instance).

    Optional: ``rate_limit_per_s`` (float), the most messages per second one
    destination (one integration) accepts; the notifier spaces deliveries to it.
    """

    name: str
    config_model: type[BaseModel]

    async def send(self, notification: Notification) -> None: ...


def headline(notification: Notification) -> str:
    """The one-line summary every channel can lead with."""
    event, name = notification.event, notification.monitor_name
    match notification.kind:
        case NotificationKind.DOWN:
            return f"🔴 {name} is DOWN"
        case NotificationKind.REMINDER:
            return f"🔴 {name} is still DOWN"
        case NotificationKind.UP:
            if event.downtimeSeconds is not None:
                return f"🟢 {name} is UP again after {format_duration(event.downtimeSeconds)}"
            return f"🟢 {name} is UP again"
        case NotificationKind.SLOW:
            return f"🟡 {name} is SLOW"
        case NotificationKind.ESCALATION:
            return f"🔴 {name} is still DOWN, escalated{_to_step(event)}"
        case NotificationKind.ACKNOWLEDGED:
            return f"🟠 {name} is DOWN, acknowledged by {event.acknowledgedBy or 'someone'}"
        case NotificationKind.TEST:
            # For a test, the event's name is the integration's: "… from uptimed to Slack #ops".
            return f"✅ Test notification from uptimed to {name}"
    return f"{name}: {event.type}"  # a kind added later than this function


def _to_step(event: MonitorEvent) -> str:
    step = event.escalation
    if step is None:
        return ""
    named = f" ({step.name})" if step.name else ""
    return f" to step {step.step} of {step.steps}{named}"


def links(notification: Notification) -> list[tuple[str, str]]:
    """The alert's links as ``(label, url)``, the one to act on first; none without ``[api] public_url``."""
    found = notification.links
    pairs = [("Acknowledge", found.acknowledge), ("Incident", found.incident), ("Monitor", found.monitor)]
    return [(label, url) for label, url in pairs if url]


def error_for_status(response: httpx.Response, *, retry_after: float | None = None) -> DeliveryError | None:
    """Map an HTTP answer to the error it means, or ``None`` for success.

    ``retry_after`` lets a channel pass a value it parsed from the body
    (Discord, Telegram); otherwise the ``Retry-After`` header is used.
    """
    status = response.status_code
    if status < 300:
        return None
    if retry_after is None:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    quoted = excerpt(response)
    text = f"HTTP {status}: {quoted}" if quoted else f"HTTP {status}"
    if status in (408, 429) or status >= 500:
        return RetryableDeliveryError(text, retry_after=retry_after)
    return PermanentDeliveryError(text)


MAX_ERROR_CHARS = 200
"""How long a delivery's error may be once scrubbed: the status and a service's reason, not a page of its data."""


def excerpt(response: httpx.Response, limit: int = 4000) -> str:
    """The start of a (text or JSON) answer's body on one line.

    Longer than an error keeps: :func:`send_scrubbed` masks the secrets in it
    first and cuts it after, so a cut never leaves half a secret behind.
    """
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media and not (media.startswith("text/") or media.endswith(("json", "xml"))):
        return f"({media} body)"
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError, httpx.ResponseNotRead):
        return ""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text[:limit]).split())


_MASK = "***"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def refusal_of(exc: BaseException) -> TargetRefused | None:
    """The target policy's refusal behind ``exc`` (httpx and httpcore chain it), if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, TargetRefused):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


async def send_scrubbed(channel: Channel, notification: Notification) -> None:
    """``channel.send(notification)``; what it raises, its integration's secrets masked.

    Every delivery and test goes through here, so no secret of a config (a
    URL token, a header value, a bot token), nor a part of one, reaches the
    notification log, the API, the pages or the daemon's log by way of an
    error text, whichever channel wrote it: an answer that quotes the request
    is common. The message is cut to :data:`MAX_ERROR_CHARS` after masking.
    An httpx error a channel lets through is named, without its text (it
    may hold the URL); a refusal of the target policy is permanent.
    """
    try:
        await channel.send(notification)
    except DeliveryError as exc:
        exc.message = clip(scrub(exc.message, secret_values(notification.config)), MAX_ERROR_CHARS)
        exc.args = (exc.message,)
        raise
    except httpx.TransportError as exc:
        refused = refusal_of(exc)
        if refused is not None:
            raise PermanentDeliveryError(str(refused)) from None
        raise RetryableDeliveryError(f"connection failed ({type(exc).__name__})") from None


def parse_retry_after(value: object) -> float | None:
    """Seconds from a ``Retry-After``-like value; ``None`` when absent or unreadable."""
    if not isinstance(value, str | bytes | SupportsFloat):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    # "inf" and "nan" parse as floats; neither is a delay anyone can wait for.
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def details(notification: Notification) -> list[tuple[str, str]]:
    """The facts worth showing under the headline, as ``(label, value)`` pairs, in order."""
    event = notification.event
    facts = [("URL", event.url)]
    if event.reason:
        facts.append(("Reason", event.reason))
    if event.responseTime is not None:
        facts.append(("Response time", f"{event.responseTime:.0f} ms"))
    if notification.kind is NotificationKind.UP and event.downtimeSeconds is not None:
        facts.append(("Downtime", format_duration(event.downtimeSeconds)))
    if event.escalation is not None:
        step = event.escalation
        text = f"step {step.step} of {step.steps}" + (f" ({step.name})" if step.name else "")
        text += f", {format_duration(step.afterSeconds)} after it went down" if step.afterSeconds else ", at once"
        if step.repeat:
            text += f", repeated ({step.repeat})"
        facts.append(("Escalation", f"{text}; policy {step.policy}" if step.policy else text))
    if event.acknowledgedBy is not None:
        facts.append(("Acknowledged by", event.acknowledgedBy))
    if event.regions:
        facts.append(("Regions", ", ".join(f"{region}: {status}" for region, status in sorted(event.regions.items()))))
    elif event.regionId:
        facts.append(("Region", event.regionId))
    facts.append(("Time", event_time(event).strftime("%Y-%m-%d %H:%M:%S UTC")))
    if (late := late_note(event)) is not None:
        facts.append(("Detected", late))
    return facts


def late_note(event: MonitorEvent) -> str | None:
    """``"40 s late: the message bus was unavailable"`` for an event decided noticeably late, else None."""
    late_by = event.late_by_s
    if late_by is None:
        return None
    return f"{format_duration(late_by)} late: {event.lateReason}"


def event_time(event: MonitorEvent) -> datetime:
    """When the event happened, as an aware UTC datetime."""
    return datetime.fromtimestamp(event.timestamp / 1000, tz=UTC)


def clip(text: str, limit: int, *, marker: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``marker`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(marker), 0)] + marker[:limit]
