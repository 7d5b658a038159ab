"""The Discord channel: request shape, Discord's embed limits, rate limits and gone webhooks."""

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
from uptimed.channels.discord import DiscordChannel, embed_length, fit_embed

URL = "https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789"
channel = DiscordChannel()


@pytest.fixture
def discord():
    with respx.mock(assert_all_called=True) as router:
        yield router.post(URL)


def sent(route) -> dict:
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json"
    return json.loads(request.content)


def assert_within_limits(embed: dict) -> None:
    assert 1 <= len(embed["title"]) <= 256
    assert len(embed.get("description", "")) <= 4096
    assert len(embed["fields"]) <= 25
    for field in embed["fields"]:
        assert 1 <= len(field["name"]) <= 256
        assert 1 <= len(field["value"]) <= 1024
    assert len(embed["footer"]["text"]) <= 2048
    assert embed_length(embed) <= 6000


async def test_down_message_shape(discord, make_notification) -> None:
    discord.mock(return_value=httpx.Response(204))
    notification = make_notification(channel, {"webhookUrl": URL})

    await channel.send(notification)

    assert str(discord.calls.last.request.url) == URL
    assert sent(discord) == {
        "embeds": [
            {
                "title": "🔴 Example API is DOWN",
                "description": "https://status.example.com/health_check/v1.2?a=b",
                "color": 0xE74C3C,
                "fields": [
                    {"name": "Reason", "value": "HTTP 503 Service Unavailable", "inline": True},
                    {"name": "Response time", "value": "1234 ms", "inline": True},
                    {"name": "Region", "value": "eu-west", "inline": True},
                    {"name": "Time", "value": "2023-11-14 22:13:20 UTC", "inline": True},
                ],
                "footer": {"text": f"uptimed · incident #17 · event {notification.event.eventId}"},
                "timestamp": "2023-11-14T22:13:20+00:00",
            }
        ],
        "allowed_mentions": {"parse": []},
    }


@pytest.mark.parametrize(
    ("kind", "color"),
    [
        (NotificationKind.UP, 0x2ECC71),
        (NotificationKind.SLOW, 0xF1C40F),
        (NotificationKind.REMINDER, 0xC0392B),
        (NotificationKind.TEST, 0x3498DB),
    ],
)
async def test_color_per_kind(discord, make_notification, kind, color) -> None:
    discord.mock(return_value=httpx.Response(204))

    await channel.send(make_notification(channel, {"webhookUrl": URL}, kind))

    assert sent(discord)["embeds"][0]["color"] == color


async def test_username_override(discord, make_notification) -> None:
    discord.mock(return_value=httpx.Response(204))

    await channel.send(make_notification(channel, {"webhookUrl": URL, "username": "uptimed"}))

    assert sent(discord)["username"] == "uptimed"


async def test_huge_name_url_and_reason_still_make_a_valid_request(discord, make_notification) -> None:
    discord.mock(return_value=httpx.Response(204))

    await channel.send(
        make_notification(
            channel,
            {"webhookUrl": URL},
            name="N" * 10_000,
            url="https://example.com/" + "u" * 10_000,
            reason="R" * 10_000,
            regions={f"region-{i}": "down " * 300 for i in range(30)},
        )
    )

    embed = sent(discord)["embeds"][0]
    assert_within_limits(embed)
    assert embed["title"].startswith("🔴 NNN") and embed["title"].endswith("…")
    # the short facts survive the cut of the long ones
    assert {"name": "Response time", "value": "1234 ms", "inline": True} in embed["fields"]


def test_fit_embed_enforces_each_limit() -> None:
    embed = {
        "title": "t" * 300,
        "description": "d" * 5000,
        "fields": [{"name": "n" * 300, "value": "v" * 2000, "inline": False} for _ in range(40)],
        "footer": {"text": "f" * 3000},
    }

    fitted = fit_embed(embed)

    assert_within_limits(fitted)
    assert len(fitted["fields"]) == 25
    assert embed_length(fitted) > 5900  # cut to fit, not emptied
    assert len(embed["title"]) == 300  # the input is left alone


def test_fit_embed_leaves_a_small_embed_unchanged() -> None:
    embed = {"title": "t", "description": "d", "fields": [{"name": "n", "value": "v"}], "footer": {"text": "f"}}

    assert fit_embed(embed) == embed


async def test_429_uses_retry_after_from_the_json_body(discord, make_notification) -> None:
    discord.mock(
        return_value=httpx.Response(
            429,
            json={"message": "You are being rate limited.", "retry_after": 1.5, "global": False},
            headers={"Retry-After": "2"},
        )
    )

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": URL}))
    assert caught.value.retry_after == 1.5


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(429, text="<html>slow down</html>", headers={"Retry-After": "3"}),
        httpx.Response(429, json={"retry_after": "soon"}, headers={"Retry-After": "3"}),
        httpx.Response(429, json={"retry_after": -1}, headers={"Retry-After": "3"}),
        httpx.Response(429, json=[1, 2], headers={"Retry-After": "3"}),
        httpx.Response(429, json={"retry_after": True}, headers={"Retry-After": "3"}),
    ],
)
async def test_429_falls_back_to_the_header_when_the_body_is_unusable(discord, make_notification, response) -> None:
    discord.mock(return_value=response)

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": URL}))
    assert caught.value.retry_after == 3


async def test_404_means_the_webhook_is_gone(discord, make_notification) -> None:
    discord.mock(return_value=httpx.Response(404, json={"message": "Unknown Webhook", "code": 10015}))

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": URL}))
    assert "Unknown Webhook" in caught.value.message


async def test_400_is_permanent(discord, make_notification) -> None:
    discord.mock(return_value=httpx.Response(400, json={"embeds": ["0"]}))

    with pytest.raises(PermanentDeliveryError):
        await channel.send(make_notification(channel, {"webhookUrl": URL}))


async def test_500_is_retryable(discord, make_notification) -> None:
    discord.mock(return_value=httpx.Response(502))

    with pytest.raises(RetryableDeliveryError):
        await channel.send(make_notification(channel, {"webhookUrl": URL}))


async def test_timeout_is_retryable_and_hides_the_token(discord, make_notification) -> None:
    discord.mock(side_effect=httpx.ConnectTimeout(f"timed out connecting to {URL}"))

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": URL}))
    assert "AbCdEfGh" not in str(caught.value)


async def test_everyone_in_a_monitor_name_pings_nobody(discord, make_notification) -> None:
    discord.mock(return_value=httpx.Response(204))

    await channel.send(make_notification(channel, {"webhookUrl": URL}, name="@everyone"))

    body = sent(discord)
    assert body["allowed_mentions"] == {"parse": []}
    assert "content" not in body
