"""Publishing an alert to an ntfy topic: ``POST {server}/{topic}``."""

from __future__ import annotations

import base64
import re
from typing import ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from uptimed.channels.base import (
    Notification,
    NotificationKind,
    Secret,
    details,
    format_duration,
    headline,
    links,
)
from uptimed.channels.http import post, raise_for_status

MESSAGE_LIMIT = 4096  # bytes; ntfy turns longer messages into attachments
TITLE_LIMIT = 250

_TAGS = {
    NotificationKind.DOWN: "red_circle",
    NotificationKind.REMINDER: "red_circle",
    NotificationKind.UP: "green_circle",
    NotificationKind.SLOW: "yellow_circle",
    NotificationKind.ESCALATION: "rotating_light",
    NotificationKind.ACKNOWLEDGED: "orange_circle",
    NotificationKind.TEST: "white_check_mark",
}


class NtfyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    topic: Secret = Field(description="the topic to publish to; anyone who knows it can subscribe")
    server: str = Field("https://ntfy.sh", description="base URL of the ntfy server")
    token: Secret | None = Field(None, description="access token, sent as a Bearer token")
    priority: int = Field(4, ge=1, le=5, description="priority of down and reminder alerts (1-5)")

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[-_A-Za-z0-9]{1,64}", value.get_secret_value()):
            raise ValueError("use 1 to 64 letters, digits, '-' or '_'")
        return value

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL:
            raise ValueError("is not a valid URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


def title(notification: Notification) -> str:
    """The title; the emoji comes from the tag, which ntfy shows in front of it."""
    name, event = notification.monitor_name, notification.event
    match notification.kind:
        case NotificationKind.DOWN:
            text = f"{name} is down"
        case NotificationKind.REMINDER:
            text = f"{name} is still down"
        case NotificationKind.UP if event.downtimeSeconds is not None:
            text = f"{name} is up again after {format_duration(event.downtimeSeconds)}"
        case NotificationKind.UP:
            text = f"{name} is up again"
        case NotificationKind.SLOW:
            text = f"{name} is slow"
        case NotificationKind.TEST:
            text = f"Test notification from uptimed to {name}"
        case _:  # escalation, acknowledged, and any kind added later
            text = headline(notification).split(" ", 1)[-1]  # without the emoji: the tag shows one
    text = " ".join(text.split())  # no line breaks in a header
    return text if len(text) <= TITLE_LIMIT else text[: TITLE_LIMIT - 1] + "…"


def header_value(text: str) -> str:
    """``text`` as a header value: as is when ASCII, else one RFC 2047 encoded word (ntfy decodes it)."""
    if text.isascii():
        return text
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def body(notification: Notification) -> bytes:
    """The message: one ``Label: value`` line per fact, at most 4,096 bytes of UTF-8."""
    raw = "\n".join(f"{label}: {value}" for label, value in details(notification)).encode()
    if len(raw) <= MESSAGE_LIMIT:
        return raw
    ellipsis = "…".encode()
    return raw[: MESSAGE_LIMIT - len(ellipsis)].decode(errors="ignore").encode() + ellipsis


def priority(notification: Notification, config: NtfyConfig) -> int:
    match notification.kind:
        case NotificationKind.DOWN | NotificationKind.REMINDER | NotificationKind.ESCALATION:
            return config.priority
        case NotificationKind.TEST:
            return 2
        case _:
            return 3


class NtfyChannel:
    """Publishes alerts to an ntfy topic."""

    name: ClassVar[str] = "ntfy"
    title: ClassVar[str] = "ntfy"  # as the service writes itself
    icon: ClassVar[tuple[str, ...]] = ("M6 16v-5a6 6 0 0 1 12 0v5l2 2H4z", "M10 20a2 2 0 0 0 4 0")  # a bell
    config_model: ClassVar[type[BaseModel]] = NtfyConfig

    async def send(self, notification: Notification) -> None:
        config: NtfyConfig = notification.config
        headers = {
            "Title": header_value(title(notification)),
            "Priority": str(priority(notification, config)),
            "Tags": f"{_TAGS.get(notification.kind, 'bell')},uptimed",
            "Content-Type": "text/plain; charset=utf-8",
        }
        found = dict(links(notification))
        url = found.get("Incident") or found.get("Monitor") or notification.event.url
        if url.isascii() and url.startswith(("http://", "https://")) and not any(c in url for c in "\r\n"):
            headers["Click"] = url
        if acknowledge := found.get("Acknowledge"):
            headers["Actions"] = f"view, Acknowledge, {acknowledge}"  # a button on the notification
        secrets = []  # the URL, with the topic, is always masked
        if config.token is not None:
            headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"
            secrets.append(config.token.get_secret_value())
        response = await post(
            notification.http,
            f"{config.server}/{config.topic.get_secret_value()}",
            content=body(notification),
            headers=headers,
            secrets=secrets,
        )
        raise_for_status(response)
