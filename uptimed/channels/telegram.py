"""Telegram: ``sendMessage`` through the Bot API, formatted as MarkdownV2.

Every reserved character of user text (monitor names, URLs, reasons) is
escaped, and the text is cut to 4,096 characters after escaping without
splitting an escape or leaving an entity open: Telegram rejects both with a
400 and the alert would be lost. The bot token is part of the request URL; it
never appears in an error message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from uptimed.channels.base import (
    Notification,
    PermanentDeliveryError,
    Secret,
    details,
    headline,
    links,
    parse_retry_after,
)
from uptimed.channels.http import post, raise_for_status

API = "https://api.telegram.org"
TEXT_LIMIT = 4096
RESERVED = frozenset("_*[]()~`>#+-=|{}.!\\")

Style = Literal["bold", "italic"] | None
_MARKER = {"bold": "*", "italic": "_", None: ""}


class TelegramConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    botToken: Secret = Field(description="the token @BotFather gave the bot (123456:ABC...)")
    chatId: int | str = Field(description="a numeric chat id (groups are negative) or @channelusername")
    messageThreadId: int | None = Field(None, description="the topic of a forum group to post into")
    disableNotification: bool = Field(False, description="deliver without a sound")

    @field_validator("botToken")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", value.get_secret_value()):
            raise ValueError("is not a bot token (expected digits, a colon and the secret part)")
        return value

    @field_validator("chatId")
    @classmethod
    def _chat(cls, value: int | str) -> int | str:
        if isinstance(value, str) and not re.fullmatch(r"-?\d+|@[A-Za-z][A-Za-z0-9_]{3,}", value):
            raise ValueError("must be a numeric chat id or an @username")
        return value


def escape(text: str) -> str:
    """``text`` with each MarkdownV2 reserved character (and the backslash) escaped."""
    return "".join("\\" + ch if ch in RESERVED else ch for ch in text)


def _units(text: str) -> int:
    # Telegram measures text in UTF-16 code units; an emoji counts twice.
    return len(text.encode("utf-16-le")) // 2


def render(segments: Sequence[tuple[str, Style]], limit: int = TEXT_LIMIT) -> str:
    """MarkdownV2 text of ``(raw text, style)`` segments, at most ``limit`` UTF-16 units.

    When the text must be cut, it is cut between escaped characters and the
    open entity is closed, so what remains always parses.
    """
    out: list[str] = []
    used = 0
    for text, style in segments:
        marker = _MARKER[style]
        piece = f"{marker}{escape(text)}{marker}" if text else ""
        if used + _units(piece) <= limit:
            out.append(piece)
            used += _units(piece)
            continue
        room = limit - used - 2 * len(marker) - 1  # both markers and the ellipsis
        kept: list[str] = []
        for ch in text:
            escaped = escape(ch)
            if _units(escaped) > room:
                break
            kept.append(escaped)
            room -= _units(escaped)
        if kept:
            out.append(f"{marker}{''.join(kept)}…{marker}")
        elif used < limit:
            out.append("…")
        break
    return "".join(out)


def segments(notification: Notification) -> list[tuple[str, Style]]:
    """The message as styled pieces of raw text, before escaping."""
    parts: list[tuple[str, Style]] = [(headline(notification), "bold"), ("\n", None)]
    for label, value in details(notification):
        parts += [("\n", None), (f"{label}:", "bold"), (f" {value}", None)]
    found = links(notification)
    if found:
        # Plain URLs, which every Telegram client makes clickable (a button with a URL Telegram cannot reach
        # would have the whole message refused).
        parts.append(("\n", None))
        for label, url in found:
            parts += [("\n", None), (f"{label}:", "bold"), (f" {url}", None)]
    event = notification.event
    footer = f"uptimed · event {event.eventId}"
    if event.incidentId is not None:
        footer = f"uptimed · incident #{event.incidentId} · event {event.eventId}"
    parts += [("\n\n", None), (footer, "italic")]
    return parts


def request_body(notification: Notification, config: TelegramConfig) -> dict[str, Any]:
    """The JSON body of ``sendMessage``."""
    body: dict[str, Any] = {
        "chat_id": config.chatId,
        "text": render(segments(notification)),
        "parse_mode": "MarkdownV2",
        "disable_web_page_preview": True,
    }
    if config.messageThreadId is not None:
        body["message_thread_id"] = config.messageThreadId
    if config.disableNotification:
        body["disable_notification"] = True
    return body


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class TelegramChannel:
    """Sends a message to a chat through a Telegram bot."""

    name: ClassVar[str] = "telegram"
    config_model: ClassVar[type[BaseModel]] = TelegramConfig
    rate_limit_per_s: ClassVar[float] = 1.0
    """Telegram allows about one message per second per chat."""

    async def send(self, notification: Notification) -> None:
        config: TelegramConfig = notification.config
        token = config.botToken.get_secret_value()
        response = await post(
            notification.http,
            f"{API}/bot{token}/sendMessage",
            json=request_body(notification, config),
            secrets=[token],
        )
        answer = _answer(response)
        parameters = answer.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        if (new_chat := parameters.get("migrate_to_chat_id")) is not None:
            raise PermanentDeliveryError(
                f"the Telegram group became a supergroup with chat id {new_chat}; set this integration's chatId to it"
            )
        raise_for_status(response, retry_after=parse_retry_after(parameters.get("retry_after")))
        if answer.get("ok") is False:
            raise PermanentDeliveryError(f"Telegram refused the message: {answer.get('description', '')}"[:300])
