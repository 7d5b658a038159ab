"""The webhook channel against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time

import pytest

from uptimed.channels.base import (
    NotificationKind,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from uptimed.channels.registry import ChannelRegistry, InvalidConfigError
from uptimed.channels.webhook import WebhookChannel

channel = WebhookChannel()


async def test_body_keeps_original_fields_and_carries_the_event(receiver, make_notification) -> None:
    notification = make_notification(channel, {"webhookUrl": f"{receiver.url}/hooks/uptimed?k=1"})

    await channel.send(notification)

    request = await receiver.next()
    assert (request.method, request.path, request.query) == ("POST", "/hooks/uptimed", {"k": "1"})
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Uptimed-Event-Id"] == str(notification.event.eventId)
    assert "X-Uptimed-Signature" not in request.headers
    body = request.json()
    event = notification.event
    assert body == {
        "event": "website.down",
        "url": event.url,
        "status": "down",
        "region": "eu-west",
        "responseTime": 1234.5,
        "timestamp": 1_700_000_000_000,
        "kind": "down",
        "data": event.model_dump(mode="json"),
    }
    assert body["data"]["eventId"] == str(event.eventId)
    assert body["data"]["websiteId"] == 42


@pytest.mark.parametrize(
    ("kind", "event", "status"),
    [(NotificationKind.UP, "website.up", "up"), (NotificationKind.SLOW, "website.slow", "slow")],
)
async def test_status_follows_the_event_type(receiver, make_notification, kind, event, status) -> None:
    await channel.send(make_notification(channel, {"webhookUrl": receiver.url}, kind))

    body = (await receiver.next()).json()
    assert (body["event"], body["status"], body["kind"]) == (event, status, kind.value)


async def test_signature_covers_the_raw_body_and_custom_headers_arrive(receiver, make_notification) -> None:
    secret = "whsec_0123456789abcdef"
    config = {
        "webhookUrl": receiver.url,
        "secret": secret,
        "headers": {"Authorization": "Bearer tok-123", "X-Team": "ops", "User-Agent": "ops-bot/2"},
    }
    before = int(time.time())

    await channel.send(make_notification(channel, config, name="Caf\u00e9 \u2615 API"))

    request = await receiver.next()
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Uptimed-Signature"], expected)
    assert before <= int(request.headers["X-Uptimed-Timestamp"]) <= int(time.time())
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["X-Team"] == "ops"
    assert request.headers["User-Agent"] == "ops-bot/2"
    # Non-ASCII is sent as UTF-8 and signed as sent.
    assert request.json()["data"]["name"] == "Caf\u00e9 \u2615 API"
    tampered = request.body.replace(b"eu-west", b"us-east")
    assert tampered != request.body
    assert "sha256=" + hmac.new(secret.encode(), tampered, hashlib.sha256).hexdigest() != expected


async def test_event_id_is_the_same_on_every_retry(receiver, make_notification) -> None:
    receiver.reply(status=503)
    notification = make_notification(channel, {"webhookUrl": receiver.url})

    with pytest.raises(RetryableDeliveryError):
        await channel.send(notification)
    await channel.send(notification)

    first, second = await receiver.next(), await receiver.next()
    assert (
        first.headers["X-Uptimed-Event-Id"] == second.headers["X-Uptimed-Event-Id"] == str(notification.event.eventId)
    )


async def test_the_attempt_header_counts_the_attempts(receiver, make_notification) -> None:
    notification = make_notification(channel, {"webhookUrl": receiver.url})

    await channel.send(notification)
    await channel.send(dataclasses.replace(notification, attempt=2))

    first, second = await receiver.next(), await receiver.next()
    assert (first.headers["X-Uptimed-Attempt"], second.headers["X-Uptimed-Attempt"]) == ("1", "2")
    assert first.headers["X-Uptimed-Event-Id"] == second.headers["X-Uptimed-Event-Id"]


async def test_500_is_retryable(receiver, make_notification) -> None:
    receiver.reply(status=500, body="boom")

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": receiver.url}))
    assert "500" in caught.value.message


async def test_429_carries_retry_after(receiver, make_notification) -> None:
    receiver.reply(status=429, headers={"Retry-After": "2"})

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": receiver.url}))
    assert caught.value.retry_after == 2


async def test_400_is_permanent(receiver, make_notification) -> None:
    receiver.reply(status=400, body="bad payload")

    with pytest.raises(PermanentDeliveryError):
        await channel.send(make_notification(channel, {"webhookUrl": receiver.url}))


async def test_a_receiver_slower_than_the_timeout_is_retryable(receiver, make_notification) -> None:
    receiver.reply(hang=True)
    started = time.monotonic()

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": receiver.url, "timeout": 0.3}))
    assert "timed out" in caught.value.message
    assert time.monotonic() - started < 3


async def test_connection_refused_is_retryable_and_hides_the_url(closed_port: int, make_notification) -> None:
    url = f"http://127.0.0.1:{closed_port}/hook/SECRET-TOKEN-123"

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, {"webhookUrl": url}))
    assert "SECRET-TOKEN-123" not in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"webhookUrl": "ftp://example.com/x"}, "http:// or https://"),
        ({"webhookUrl": "https://example.com", "headers": {"Bad Name": "x"}}, "not a valid header name"),
        ({"webhookUrl": "https://example.com", "headers": {"X-Uptimed-Signature": "x"}}, "set by uptimed"),
        ({"webhookUrl": "https://example.com", "headers": {"X-A": "a\r\nInjected: 1"}}, "line breaks"),
        ({"webhookUrl": "https://example.com", "timeout": 0}, "must be more than 0"),
        ({"webhookUrl": "https://example.com", "extra": 1}, "is not a field here"),
        ({}, "is required"),
    ],
)
def test_bad_configs_are_refused(config, problem) -> None:
    registry = ChannelRegistry.from_channels([WebhookChannel])

    with pytest.raises(InvalidConfigError) as caught:
        registry.validate_config("webhook", config)
    assert problem in str(caught.value)


def test_config_errors_never_repeat_the_secret_url() -> None:
    registry = ChannelRegistry.from_channels([WebhookChannel])

    with pytest.raises(InvalidConfigError) as caught:
        registry.validate_config("webhook", {"webhookUrl": "gopher://hooks.example/T0KEN-s3cr3t"})
    assert "T0KEN-s3cr3t" not in str(caught.value)
    assert caught.value.errors[0]["loc"] == "webhookUrl"
