"""Webhook: the event as JSON, POSTed to a URL the user owns, optionally signed.

The body keeps the original design's fields (``event``, ``url``, ``status``,
``region``, ``responseTime``, ``timestamp``) and carries the whole event under
``data``; with ``[api] public_url`` set, ``links`` holds the addresses of the
monitor's page, the incident's and, for an alert of an open incident, a link
that acknowledges it. With a ``secret``, ``X-Uptimed-Signature`` is
``sha256=<hex HMAC-SHA256 of the raw body with the secret>``; a receiver
recomputes it over the bytes it received and compares in constant time.
``X-Uptimed-Event-Id`` is the event's id, the same on every retry, so a
receiver can drop duplicates; ``X-Uptimed-Attempt`` counts the attempts (1, 2,
...). uptimed delivers at least once: a second copy of an event arrives only
when a process died while its request was in flight (or the receiver answered
after the timeout), so a receiver that must act once deduplicates on
``X-Uptimed-Event-Id``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from uptimed.channels.base import Notification, NotificationKind, Secret, links
from uptimed.channels.http import SecretHttpUrl, post, raise_for_status
from uptimed.event import EventType

SIGNATURE_HEADER = "X-Uptimed-Signature"
TIMESTAMP_HEADER = "X-Uptimed-Timestamp"
EVENT_ID_HEADER = "X-Uptimed-Event-Id"
ATTEMPT_HEADER = "X-Uptimed-Attempt"

_STATUS = {
    EventType.DOWN: "down",
    EventType.UP: "up",
    EventType.SLOW: "slow",
    EventType.ESCALATED: "down",
    EventType.ACKNOWLEDGED: "acknowledged",
}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)
_RESERVED = {"content-type", "content-length", "host", "transfer-encoding"}


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhookUrl: SecretHttpUrl = Field(description="where to POST the event")
    headers: dict[str, Secret] = Field(
        default_factory=dict, description="extra request headers (values are kept secret: they often carry tokens)"
    )
    secret: Secret | None = Field(None, description="signs each body with HMAC-SHA256 when set")
    timeout: float = Field(10.0, gt=0, le=120, description="seconds to wait for the receiver")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, header in value.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if name.lower() in _RESERVED or name.lower().startswith("x-uptimed-"):
                raise ValueError(f"header {name!r} is set by uptimed")
            text = header.get_secret_value()
            if any(ch in text for ch in "\r\n\0") or not text.isascii():
                raise ValueError(f"the value of header {name!r} must be ASCII without line breaks")
        return value


def body(notification: Notification) -> dict[str, Any]:
    """The JSON document a webhook receives; a test says ``"event": "test"`` and ``"status": "test"``."""
    event = notification.event
    test = notification.kind is NotificationKind.TEST
    document = {
        "event": "test" if test else event.type.value,
        "url": event.url,
        "status": "test" if test else _STATUS.get(event.type, event.type.value),
        "region": event.regionId,
        "responseTime": event.responseTime,
        "timestamp": event.timestamp,
        "kind": notification.kind.value,
        "data": event.model_dump(mode="json"),
    }
    if found := links(notification):
        document["links"] = {label.lower(): url for label, url in found}
    return document


def signature(secret: str, raw_body: bytes) -> str:
    """The ``X-Uptimed-Signature`` value for ``raw_body``."""
    return "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """POSTs each event as JSON to the configured URL."""

    name: ClassVar[str] = "webhook"
    config_model: ClassVar[type[BaseModel]] = WebhookConfig

    async def send(self, notification: Notification) -> None:
        config: WebhookConfig = notification.config
        # Serialise once: the signature must cover exactly the bytes on the wire.
        raw = json.dumps(body(notification), separators=(",", ":"), ensure_ascii=False).encode()
        custom = {name: value.get_secret_value() for name, value in config.headers.items()}
        headers = httpx.Headers({"User-Agent": "uptimed-webhook"})
        headers.update(custom)  # case-insensitive: a custom User-Agent replaces ours
        headers.update(
            {
                "Content-Type": "application/json",
                EVENT_ID_HEADER: str(notification.event.eventId),
                ATTEMPT_HEADER: str(notification.attempt),
            }
        )
        secrets = list(custom.values())
        if config.secret is not None:
            headers[TIMESTAMP_HEADER] = str(int(time.time()))
            headers[SIGNATURE_HEADER] = signature(config.secret.get_secret_value(), raw)
            secrets.append(config.secret.get_secret_value())
        response = await post(
            notification.http,
            config.webhookUrl.get_secret_value(),
            content=raw,
            headers=headers,
            timeout=config.timeout,
            secrets=secrets,
        )
        raise_for_status(response)
