"""The Slack channel: the exact request an incoming webhook receives (respx), and error mapping."""

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
from uptimed.channels.slack import SlackChannel

URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
channel = SlackChannel()


@pytest.fixture
def slack():
    with respx.mock(assert_all_called=True) as router:
        yield router.post(URL)


def sent(route) -> dict:
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    return json.loads(request.content)


async def test_down_message_shape(slack, make_notification) -> None:
    slack.mock(return_value=httpx.Response(200, text="ok"))
    notification = make_notification(channel, {"webhookUrl": URL})

    await channel.send(notification)

    assert slack.call_count == 1
    assert str(slack.calls.last.request.url) == URL
    event_id = notification.event.eventId
    assert sent(slack) == {
        "text": "🔴 Example API is DOWN: https://status.example.com/health_check/v1.2?a=b",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "🔴 Example API is DOWN", "emoji": True}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*URL*\nhttps://status.example.com/health_check/v1.2?a=b"},
                    {"type": "mrkdwn", "text": "*Reason*\nHTTP 503 Service Unavailable"},
                    {"type": "mrkdwn", "text": "*Response time*\n1234 ms"},
                    {"type": "mrkdwn", "text": "*Region*\neu-west"},
                    {"type": "mrkdwn", "text": "*Time*\n2023-11-14 22:13:20 UTC"},
                ],
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"uptimed · incident #17 · event {event_id}"}],
            },
        ],
    }


@pytest.mark.parametrize(
    ("kind", "header"),
    [
        (NotificationKind.UP, "🟢 Example API is UP again after 1h 2m 5s"),
        (NotificationKind.SLOW, "🟡 Example API is SLOW"),
        (NotificationKind.REMINDER, "🔴 Example API is still DOWN"),
        (NotificationKind.TEST, "✅ Test notification from uptimed to Example API"),
    ],
)
async def test_each_kind_has_its_headline(slack, make_notification, kind, header) -> None:
    slack.mock(return_value=httpx.Response(200, text="ok"))

    await channel.send(make_notification(channel, {"webhookUrl": URL}, kind))

    body = sent(slack)
    assert body["blocks"][0]["text"]["text"] == header
    assert body["text"].startswith(header)


async def test_up_shows_the_downtime(slack, make_notification) -> None:
    slack.mock(return_value=httpx.Response(200, text="ok"))

    await channel.send(make_notification(channel, {"webhookUrl": URL}, NotificationKind.UP))

    assert {"type": "mrkdwn", "text": "*Downtime*\n1h 2m 5s"} in sent(slack)["blocks"][1]["fields"]


async def test_mrkdwn_control_characters_are_escaped(slack, make_notification) -> None:
    slack.mock(return_value=httpx.Response(200, text="ok"))

    await channel.send(make_notification(channel, {"webhookUrl": URL}, reason="<!channel> a & b > c"))

    fields = sent(slack)["blocks"][1]["fields"]
    assert {"type": "mrkdwn", "text": "*Reason*\n&lt;!channel&gt; a &amp; b &gt; c"} in fields


async def test_a_10000_character_name_still_fits_block_kit_limits(slack, make_notification) -> None:
    slack.mock(return_value=httpx.Response(200, text="ok"))

    await channel.send(
        make_notification(channel, {"webhookUrl": URL}, name="&" * 10_000, url="https://x/" + "<" * 10_000)
    )

    body = sent(slack)
    header = body["blocks"][0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")
    for item in body["blocks"][1]["fields"]:
        assert len(item["text"]) <= 2000
        # cut between entities, never inside one
        assert not item["text"].rstrip("…").endswith(("&", "&a", "&am", "&l", "&g", "&lt", "&gt"))
    assert len(body["text"]) <= 3000


async def test_429_is_retryable_with_retry_after(slack, make_notification) -> None:
    slack.mock(return_value=httpx.Response(429, headers={"Retry-After": "2"}, text="rate_limited"))

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": URL}))
    assert caught.value.retry_after == 2


async def test_500_is_retryable(slack, make_notification) -> None:
    slack.mock(return_value=httpx.Response(500, text="internal_error"))

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": URL}))
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "text"), [(400, "invalid_payload"), (404, "no_service"), (410, "channel_is_archived")]
)
async def test_4xx_is_permanent(slack, make_notification, status, text) -> None:
    slack.mock(return_value=httpx.Response(status, text=text))

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": URL}))
    assert text in caught.value.message


async def test_timeout_is_retryable(slack, make_notification) -> None:
    slack.mock(side_effect=httpx.ReadTimeout("timed out"))

    with pytest.raises(RetryableDeliveryError):
        await channel.send(make_notification(channel, {"webhookUrl": URL}))


async def test_transport_errors_do_not_leak_the_webhook_url(slack, make_notification) -> None:
    slack.mock(side_effect=httpx.ConnectError(f"cannot reach {URL}"))

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": URL}))
    assert "XXXXXXXXXXXX" not in str(caught.value)
    assert "connection to hooks.slack.com failed" in str(caught.value)
