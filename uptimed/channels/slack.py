"""Slack: an incoming-webhook message in Block Kit, with a plain ``text`` fallback.

Slack allows about one message a second per webhook and answers 429 with
``Retry-After`` beyond that; the error carries the delay for the notifier.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from uptimed.channels.base import Notification, clip, details, headline, links
from uptimed.channels.http import SecretHttpUrl, post, raise_for_status

# Block Kit limits (characters).
HEADER_LIMIT = 150
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000
TEXT_LIMIT = 3000
BUTTON_URL_LIMIT = 3000


class SlackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhookUrl: SecretHttpUrl = Field(description="the incoming webhook URL (https://hooks.slack.com/services/...)")


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only ``&``, ``<`` and ``>`` are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """``text`` escaped and cut to ``limit`` characters without splitting an entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": fit(text, limit)}


def message(notification: Notification) -> dict[str, Any]:
    """The JSON body for Slack."""
    title = headline(notification)
    event = notification.event
    fields = [_mrkdwn(f"*{label}*\n{value}", FIELD_LIMIT) for label, value in details(notification)]
    context = f"uptimed · event {event.eventId}"
    if event.incidentId is not None:
        context = f"uptimed · incident #{event.incidentId} · event {event.eventId}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, HEADER_LIMIT), "emoji": True}},
        {"type": "section", "fields": fields[:10]},
    ]
    if found := links(notification):
        # Link buttons: they only open the page (acknowledging takes a press there), so no interactivity is needed.
        buttons = [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url[:BUTTON_URL_LIMIT]}
            for label, url in found
        ]
        if found[0][0] == "Acknowledge":
            buttons[0]["style"] = "primary"
        blocks.append({"type": "actions", "elements": buttons})
    blocks.append({"type": "context", "elements": [_mrkdwn(context, CONTEXT_LIMIT)]})
    return {"text": fit(f"{title}: {event.url}", TEXT_LIMIT), "blocks": blocks}


class SlackChannel:
    """Posts to a Slack incoming webhook."""

    name: ClassVar[str] = "slack"
    config_model: ClassVar[type[BaseModel]] = SlackConfig
    rate_limit_per_s: ClassVar[float] = 1.0
    """Slack allows about one message per second per incoming webhook."""

    async def send(self, notification: Notification) -> None:
        config: SlackConfig = notification.config
        response = await post(notification.http, config.webhookUrl.get_secret_value(), json=message(notification))
        raise_for_status(response)
