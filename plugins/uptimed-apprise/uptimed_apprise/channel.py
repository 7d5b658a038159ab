"""Delivering an alert through one Apprise URL, off the event loop."""

from __future__ import annotations

import asyncio
from typing import ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from uptimed.channels.base import (
    Notification,
    NotificationKind,
    PermanentDeliveryError,
    RetryableDeliveryError,
    Secret,
    details,
    headline,
    links,
)
from uptimed.channels.http import scrub

_TYPES = {
    NotificationKind.DOWN: apprise.NotifyType.FAILURE,
    NotificationKind.REMINDER: apprise.NotifyType.FAILURE,
    NotificationKind.UP: apprise.NotifyType.SUCCESS,
    NotificationKind.SLOW: apprise.NotifyType.WARNING,
    NotificationKind.ESCALATION: apprise.NotifyType.FAILURE,
    NotificationKind.ACKNOWLEDGED: apprise.NotifyType.WARNING,
    NotificationKind.TEST: apprise.NotifyType.INFO,
}


class AppriseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: Secret = Field(description="an Apprise URL, e.g. pover://user@token or jsons://host/path")

    @field_validator("url")
    @classmethod
    def _loadable(cls, value: SecretStr) -> SecretStr:
        if apprise.Apprise.instantiate(value.get_secret_value()) is None:
            raise ValueError("is not a URL Apprise can use (check the scheme and its required parts)")
        return value


def url_secrets(url: str) -> list[str]:
    """The parts of an Apprise URL that may be credentials, for masking in messages."""
    parts = urlsplit(url)
    found = [url, parts.username or "", parts.password or ""]
    found += [unquote(segment) for segment in parts.path.split("/")]
    found += [value for _, value in parse_qsl(parts.query)]
    if "@" not in parts.netloc:
        found.append(parts.hostname or "")  # several schemes put a token where the host goes
    return [part for part in found if len(part) >= 4]


def _notify(url: str, title: str, body: str, notify_type: str) -> str | None:
    """Send, blocking; ``None`` on success, else what Apprise said went wrong."""
    client = apprise.Apprise()
    if not client.add(url):
        raise PermanentDeliveryError("Apprise cannot load this URL")
    result = client.notify(body=body, title=title, notify_type=notify_type)
    if result:
        return None
    # Apprise 2 returns a result with captured logs; Apprise 1 only a bool.
    logs = getattr(result, "logs", None)
    messages = [entry.message for entry in logs() if entry.level in ("WARNING", "ERROR")] if logs else []
    return messages[-1] if messages else "Apprise reported a failed delivery"


class AppriseChannel:
    """Sends alerts to any service Apprise supports."""

    name: ClassVar[str] = "apprise"
    title: ClassVar[str] = "Apprise"
    icon: ClassVar[tuple[str, ...]] = (
        "M3 10v4h4l7 4V6l-7 4z",
        "M17.5 9a4 4 0 0 1 0 6M20 7a7 7 0 0 1 0 10",
    )  # a loudspeaker
    config_model: ClassVar[type[BaseModel]] = AppriseConfig

    async def send(self, notification: Notification) -> None:
        config: AppriseConfig = notification.config
        url = config.url.get_secret_value()
        body = "\n".join(f"{label}: {value}" for label, value in [*details(notification), *links(notification)])
        # Apprise blocks on network I/O: run it in a worker thread.
        problem = await asyncio.to_thread(
            _notify, url, headline(notification), body, _TYPES.get(notification.kind, apprise.NotifyType.INFO)
        )
        if problem is not None:
            raise RetryableDeliveryError(f"apprise: {scrub(problem, url_secrets(url))}")
