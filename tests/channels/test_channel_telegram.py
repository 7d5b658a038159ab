"""The Telegram channel: MarkdownV2 escaping, the 4,096 limit, errors, and never leaking the token."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from uptimed.channels.base import (
    NotificationKind,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from uptimed.channels.registry import ChannelRegistry, InvalidConfigError
from uptimed.channels.telegram import TelegramChannel, escape, render

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"
SEND = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
CONFIG = {"botToken": TOKEN, "chatId": -1001234567890}
# From Telegram's Bot API docs, written out here rather than taken from the code under test.
RESERVED = set("_*[]()~`>#+-=|{}.!") | {"\\"}
channel = TelegramChannel()


def parse_markdown_v2(text: str) -> str:
    """The plain text Telegram shows for ``text``; fails where Telegram would refuse it.

    Handles what the channel emits: escapes, *bold* and _italic_. Any other
    unescaped reserved character, a dangling backslash or an unclosed entity
    is an error, as it is for Telegram ("can't parse entities").
    """
    out: list[str] = []
    open_entities: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            assert i + 1 < len(text), "dangling backslash"
            assert text[i + 1] in RESERVED, f"needless escape of {text[i + 1]!r}"
            out.append(text[i + 1])
            i += 2
            continue
        if ch in "*_":
            if open_entities and open_entities[-1] == ch:
                open_entities.pop()
            else:
                open_entities.append(ch)
            i += 1
            continue
        assert ch not in RESERVED, f"unescaped {ch!r} at {i}"
        out.append(ch)
        i += 1
    assert not open_entities, f"unclosed entities {open_entities}"
    return "".join(out)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.fixture
def telegram():
    with respx.mock(assert_all_called=True) as router:
        yield router.post(SEND)


def sent(route) -> dict:
    return json.loads(route.calls.last.request.content)


OK = httpx.Response(200, json={"ok": True, "result": {"message_id": 1}})


async def test_request_shape(telegram, make_notification) -> None:
    telegram.mock(return_value=OK)
    notification = make_notification(channel, CONFIG)

    await channel.send(notification)

    assert str(telegram.calls.last.request.url) == SEND
    body = sent(telegram)
    assert body.keys() == {"chat_id", "text", "parse_mode", "disable_web_page_preview"}
    assert body["chat_id"] == -1001234567890
    assert body["parse_mode"] == "MarkdownV2"
    assert body["disable_web_page_preview"] is True
    assert parse_markdown_v2(body["text"]) == (
        "🔴 Example API is DOWN\n"
        "\n"
        "URL: https://status.example.com/health_check/v1.2?a=b\n"
        "Reason: HTTP 503 Service Unavailable\n"
        "Response time: 1234 ms\n"
        "Region: eu-west\n"
        "Time: 2023-11-14 22:13:20 UTC\n"
        "\n"
        f"uptimed · incident #17 · event {notification.event.eventId}"
    )
    assert body["text"].startswith(
        "*🔴 Example API is DOWN*\n\n*URL:* https://status\\.example\\.com/health\\_check/v1\\.2?a\\=b"
    )


async def test_new_options(telegram, make_notification) -> None:
    telegram.mock(return_value=OK)

    await channel.send(make_notification(channel, {**CONFIG, "messageThreadId": 5, "disableNotification": True}))

    body = sent(telegram)
    assert (body["message_thread_id"], body["disable_notification"]) == (5, True)


async def test_a_url_full_of_reserved_characters_arrives_intact(telegram, make_notification) -> None:
    telegram.mock(return_value=OK)
    url = "https://my_host.example.com/a_b/c.d/(x)[y]{z}?q=1+2-3&r=!#frag~`|>*"

    await channel.send(make_notification(channel, CONFIG, url=url, name="my_service.v2 [prod] (eu) #1 > *all*"))

    shown = parse_markdown_v2(sent(telegram)["text"])
    assert f"URL: {url}\n" in shown
    assert shown.startswith("🔴 my_service.v2 [prod] (eu) #1 > *all* is DOWN\n")


def test_escape_covers_every_reserved_character_and_the_backslash() -> None:
    raw = "_*[]()~`>#+-=|{}.!\\ plain"

    escaped = escape(raw)

    assert escaped == "\\_\\*\\[\\]\\(\\)\\~\\`\\>\\#\\+\\-\\=\\|\\{\\}\\.\\!\\\\ plain"
    assert parse_markdown_v2(escaped) == raw


@pytest.mark.parametrize("name", ["N" * 10_000, "." * 10_000, "🔥" * 5_000, "a_" * 5_000])
async def test_a_10000_character_name_is_cut_to_4096_without_breaking_markup(telegram, make_notification, name) -> None:
    telegram.mock(return_value=OK)

    await channel.send(make_notification(channel, CONFIG, name=name))

    text = sent(telegram)["text"]
    assert utf16_len(text) <= 4096
    assert utf16_len(text) > 4000  # cut to fit, not thrown away
    shown = parse_markdown_v2(text)  # every escape whole, every entity closed
    assert shown.startswith("🔴 " + name[:100])
    assert shown.endswith("…")


def test_render_cuts_between_escapes_and_closes_the_entity() -> None:
    for limit in range(1, 40):
        text = render([("head", "bold"), ("\n", None), ("a.b.c.d.e.f.g.h.i.j", "italic")], limit)
        assert utf16_len(text) <= limit
        parse_markdown_v2(text)


async def test_429_uses_parameters_retry_after(telegram, make_notification) -> None:
    telegram.mock(
        return_value=httpx.Response(
            429,
            json={
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": {"retry_after": 7},
            },
        )
    )

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, CONFIG))
    assert caught.value.retry_after == 7


async def test_a_group_that_became_a_supergroup_is_permanent_and_names_the_new_chat(
    telegram, make_notification
) -> None:
    telegram.mock(
        return_value=httpx.Response(
            400,
            json={
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": -1009876543210},
            },
        )
    )

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, CONFIG))
    assert "-1009876543210" in caught.value.message
    assert "chatId" in caught.value.message


@pytest.mark.parametrize(
    ("status", "description"),
    [(400, "Bad Request: chat not found"), (401, "Unauthorized"), (403, "Forbidden: bot was blocked by the user")],
)
async def test_client_errors_are_permanent(telegram, make_notification, status, description) -> None:
    telegram.mock(
        return_value=httpx.Response(status, json={"ok": False, "error_code": status, "description": description})
    )

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, CONFIG))
    assert description in caught.value.message
    assert TOKEN not in str(caught.value)


async def test_server_errors_are_retryable(telegram, make_notification) -> None:
    telegram.mock(return_value=httpx.Response(502, text="Bad Gateway"))

    with pytest.raises(RetryableDeliveryError):
        await channel.send(make_notification(channel, CONFIG))


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError(f"[Errno 111] Connection refused: {SEND}"),
        httpx.ReadTimeout(f"The read operation timed out on {SEND}"),
        httpx.RemoteProtocolError(f"Server disconnected without sending a response. ({SEND})"),
    ],
)
async def test_transport_errors_never_carry_the_bot_token(telegram, make_notification, error) -> None:
    telegram.mock(side_effect=error)

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, CONFIG))
    secret_part = TOKEN.split(":")[1]
    assert secret_part not in str(caught.value)
    # httpx's own exception, which names the URL, is not chained for a traceback to print
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(
    "config",
    [
        {"botToken": "not-a-token", "chatId": 1},
        {"botToken": TOKEN, "chatId": "general"},
        {"botToken": TOKEN},
        {"botToken": TOKEN, "chatId": 1, "parseMode": "HTML"},
    ],
)
def test_bad_configs_are_refused_without_echoing_the_token(config) -> None:
    registry = ChannelRegistry.from_channels([TelegramChannel])

    with pytest.raises(InvalidConfigError) as caught:
        registry.validate_config("telegram", config)
    assert TOKEN not in str(caught.value)


def test_chat_ids_as_numbers_strings_and_usernames_are_accepted() -> None:
    registry = ChannelRegistry.from_channels([TelegramChannel])

    for chat in (12345, "-1001234567890", "@uptimed_alerts"):
        assert registry.validate_config("telegram", {"botToken": TOKEN, "chatId": chat}).chatId == chat


@pytest.mark.parametrize("kind", list(NotificationKind))
async def test_every_kind_parses(telegram, make_notification, kind) -> None:
    telegram.mock(return_value=OK)

    await channel.send(make_notification(channel, CONFIG, kind))

    parse_markdown_v2(sent(telegram)["text"])


async def test_a_name_that_does_not_resolve_reads_plainly(telegram, make_notification) -> None:
    telegram.mock(side_effect=httpx.ConnectError("[Errno -2] Name or service not known"))

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, CONFIG))
    assert str(caught.value) == (
        "api.telegram.org could not be resolved (DNS): check the host name and this server's DNS"
    )


async def test_a_refused_connection_names_the_host_only(telegram, make_notification) -> None:
    telegram.mock(side_effect=httpx.ConnectError(f"[Errno 111] Connection refused: {SEND}"))

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, CONFIG))
    assert str(caught.value) == "api.telegram.org refused the connection"
