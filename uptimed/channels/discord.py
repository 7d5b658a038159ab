"""Discord: a webhook message with one embed, kept inside Discord's limits.

Over any limit Discord answers 400 and the alert is lost, so every text is cut
to fit before sending (a monitor name of 10,000 characters still goes out).
A 404 means the webhook was deleted: permanent. A 429 carries ``retry_after``
(float seconds) in its JSON body and a ``Retry-After`` header.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from uptimed.channels.base import (
    Notification,
    NotificationKind,
    clip,
    details,
    event_time,
    headline,
    links,
)
from uptimed.channels.http import SecretHttpUrl, post, raise_for_status

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000

COLORS = {
    NotificationKind.DOWN: 0xE74C3C,
    NotificationKind.REMINDER: 0xC0392B,
    NotificationKind.UP: 0x2ECC71,
    NotificationKind.SLOW: 0xF1C40F,
    NotificationKind.ESCALATION: 0xC0392B,
    NotificationKind.ACKNOWLEDGED: 0xE67E22,
    NotificationKind.TEST: 0x3498DB,
}


class DiscordConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhookUrl: SecretHttpUrl = Field(description="the webhook URL (https://discord.com/api/webhooks/<id>/<token>)")
    username: str | None = Field(None, min_length=1, max_length=80, description="overrides the webhook's name")


def embed_length(embed: dict[str, Any]) -> int:
    """The characters Discord counts against the 6,000 total for one embed."""
    fields = embed.get("fields", [])
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in fields)
        + len(embed.get("footer", {}).get("text", ""))
        + len(embed.get("author", {}).get("name", ""))
    )


def fit_embed(embed: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``embed`` with every text cut to Discord's per-item and total limits."""
    embed = dict(embed)
    if "title" in embed:
        embed["title"] = clip(embed["title"], TITLE_LIMIT)
    if "description" in embed:
        embed["description"] = clip(embed["description"], DESCRIPTION_LIMIT)
    if "footer" in embed:
        embed["footer"] = {**embed["footer"], "text": clip(embed["footer"]["text"], FOOTER_LIMIT)}
    embed["fields"] = [
        {**f, "name": clip(f["name"], FIELD_NAME_LIMIT) or "-", "value": clip(f["value"], FIELD_VALUE_LIMIT) or "-"}
        for f in embed.get("fields", [])[:FIELDS_LIMIT]
    ]
    # Still too long in total: shorten the longest text first, so the short
    # facts (status, time) survive and the long free text pays.
    while (excess := embed_length(embed) - EMBED_TOTAL_LIMIT) > 0:
        text, replace = max(_texts(embed), key=lambda item: len(item[0]))
        replace(clip(text, max(len(text) - excess, len(text) // 2, 1)))
    return embed


def _texts(embed: dict[str, Any]) -> list[tuple[str, Callable[[str], None]]]:
    """Each text of ``embed`` that counts against the total, with a way to replace it."""

    def setter(holder: dict[str, Any], key: str) -> Callable[[str], None]:
        return lambda value: holder.__setitem__(key, value)

    out = [(embed[key], setter(embed, key)) for key in ("title", "description") if key in embed]
    if "footer" in embed:
        out.append((embed["footer"]["text"], setter(embed["footer"], "text")))
    for field in embed["fields"]:
        out += [(field["name"], setter(field, "name")), (field["value"], setter(field, "value"))]
    return out


def message(notification: Notification, config: DiscordConfig | None = None) -> dict[str, Any]:
    """The JSON body for Discord's Execute Webhook."""
    event = notification.event
    facts = details(notification)
    footer = "uptimed" if event.incidentId is None else f"uptimed · incident #{event.incidentId}"
    fields = [{"name": label, "value": value, "inline": len(value) <= 40} for label, value in facts if label != "URL"]
    found = links(notification)
    if found:
        # Markdown links: the link text stays short whatever the URL, and the first field shows them.
        fields.insert(
            0, {"name": "Links", "value": " · ".join(f"[{label}]({url})" for label, url in found), "inline": False}
        )
    embed = {
        "title": headline(notification),
        "description": event.url,
        "color": COLORS.get(notification.kind, COLORS[NotificationKind.DOWN]),
        "fields": fields,
        "footer": {"text": f"{footer} · event {event.eventId}"},
        "timestamp": event_time(event).isoformat(),
    }
    if found:
        embed["url"] = dict(found).get("Incident") or found[0][1]
    body: dict[str, Any] = {
        "embeds": [fit_embed(embed)],
        # A monitor name such as "@everyone" must not ping anybody.
        "allowed_mentions": {"parse": []},
    }
    if config is not None and config.username:
        body["username"] = config.username
    return body


def retry_after(response: httpx.Response) -> float | None:
    """Discord's ``retry_after`` from a 429 body, if it is a usable number of seconds."""
    try:
        value = response.json().get("retry_after")
    except (ValueError, AttributeError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


class DiscordChannel:
    """Posts an embed to a Discord webhook."""

    name: ClassVar[str] = "discord"
    config_model: ClassVar[type[BaseModel]] = DiscordConfig
    rate_limit_per_s: ClassVar[float] = 2.0
    """Discord allows 5 requests per 2 s per webhook; stay under it."""

    async def send(self, notification: Notification) -> None:
        config: DiscordConfig = notification.config
        response = await post(
            notification.http, config.webhookUrl.get_secret_value(), json=message(notification, config)
        )
        raise_for_status(response, retry_after=retry_after(response) if response.status_code == 429 else None)
