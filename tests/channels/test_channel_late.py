"""A message decided noticeably late says so, in words, in every built-in channel."""

from __future__ import annotations

import json

import httpx
import respx

from tests.channels.conftest import make_event
from tests.channels.test_channel_discord import URL as DISCORD_URL
from tests.channels.test_channel_email import TO, settings
from tests.channels.test_channel_slack import URL as SLACK_URL
from tests.channels.test_channel_telegram import CONFIG as TELEGRAM_CONFIG
from tests.channels.test_channel_telegram import SEND as TELEGRAM_SEND
from uptimed.channels.base import NotificationKind, late_note
from uptimed.channels.discord import DiscordChannel
from uptimed.channels.email import EmailChannel
from uptimed.channels.slack import SlackChannel
from uptimed.channels.telegram import TelegramChannel

T0 = 1_700_000_000_000
LATE = {"timestamp": T0, "detectedAt": T0 + 40_000, "lateReason": "the message bus was unavailable"}
SAID = "40s late: the message bus was unavailable"


def test_late_note() -> None:
    assert late_note(make_event(**LATE)) == SAID
    assert late_note(make_event(timestamp=T0, detectedAt=T0 + 300)) is None


async def test_slack_discord_and_telegram_say_it(make_notification) -> None:
    with respx.mock(assert_all_called=True) as router:
        slack = router.post(SLACK_URL).mock(return_value=httpx.Response(200, text="ok"))
        discord = router.post(DISCORD_URL).mock(return_value=httpx.Response(204))
        telegram = router.post(TELEGRAM_SEND).mock(return_value=httpx.Response(200, json={"ok": True, "result": {}}))
        await SlackChannel().send(make_notification(SlackChannel(), {"webhookUrl": SLACK_URL}, **LATE))
        await DiscordChannel().send(make_notification(DiscordChannel(), {"webhookUrl": DISCORD_URL}, **LATE))
        await TelegramChannel().send(make_notification(TelegramChannel(), TELEGRAM_CONFIG, **LATE))

    assert SAID in json.dumps(json.loads(slack.calls.last.request.content), ensure_ascii=False)
    assert SAID in json.dumps(json.loads(discord.calls.last.request.content), ensure_ascii=False)
    # Telegram's MarkdownV2 escapes the colon-free text only where it must: the words are all there.
    text = json.loads(telegram.calls.last.request.content)["text"]
    assert "40s late" in text and "message bus was unavailable" in text


async def test_email_says_it(smtp_server, make_notification) -> None:
    server = await smtp_server("plain")
    await EmailChannel().send(
        make_notification(EmailChannel(), TO, NotificationKind.DOWN, smtp=settings(server), **LATE)
    )
    mail = await server.mail.get()
    assert f"Detected: {SAID}" in mail.message.get_body(("plain",)).get_content()


async def test_an_event_on_time_says_nothing_of_it(make_notification) -> None:
    with respx.mock(assert_all_called=True) as router:
        slack = router.post(SLACK_URL).mock(return_value=httpx.Response(200, text="ok"))
        await SlackChannel().send(make_notification(SlackChannel(), {"webhookUrl": SLACK_URL}))
    assert "late" not in slack.calls.last.request.content.decode()
