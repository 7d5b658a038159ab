"""plugins/uptimed-ntfy, installed with pip, delivering to a real local HTTP server."""

from __future__ import annotations

import base64
import importlib.metadata

import pytest

from uptimed.channels.base import (
    NotificationKind,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from uptimed.channels.registry import (
    ChannelRegistry,
    InvalidConfigError,
    redacted_config,
)

pytestmark = pytest.mark.usefixtures("installed_plugins")


def decode_title(value: str) -> str:
    """What ntfy shows for a ``Title`` header: RFC 2047 ``=?utf-8?b?...?=`` decoded, else as is."""
    if value.startswith("=?utf-8?b?") and value.endswith("?="):
        return base64.b64decode(value[len("=?utf-8?b?") : -2]).decode()
    return value


@pytest.fixture
def ntfy():
    registry = ChannelRegistry.discover()
    return registry, registry.get("ntfy")


def test_discovered_through_its_entry_point(ntfy) -> None:
    registry, _ = ntfy

    loaded = registry.channels["ntfy"]
    assert (loaded.distribution, loaded.version) == ("uptimed-ntfy", importlib.metadata.version("uptimed-ntfy"))
    assert loaded.value == "uptimed_ntfy:NtfyChannel"


async def test_publishes_title_priority_tags_and_token(ntfy, receiver, make_notification) -> None:
    registry, channel = ntfy
    config = {"server": receiver.url + "/", "topic": "ops-alerts_42", "token": "tk_abcdefghijklmnop"}
    registry.validate_config("ntfy", config)

    await channel.send(make_notification(channel, config, name="Caf\u00e9 API"))

    request = await receiver.next()
    assert (request.method, request.path) == ("POST", "/ops-alerts_42")
    assert decode_title(request.headers["Title"]) == "Caf\u00e9 API is down"
    assert request.headers["Title"].isascii()
    assert request.headers["Priority"] == "4"
    assert request.headers["Tags"] == "red_circle,uptimed"
    assert request.headers["Click"] == "https://status.example.com/health_check/v1.2?a=b"
    assert request.headers["Authorization"] == "Bearer tk_abcdefghijklmnop"
    assert request.body.decode() == (
        "URL: https://status.example.com/health_check/v1.2?a=b\n"
        "Reason: HTTP 503 Service Unavailable\n"
        "Response time: 1234 ms\n"
        "Region: eu-west\n"
        "Time: 2023-11-14 22:13:20 UTC"
    )


async def test_recovery_is_lower_priority_and_ascii_titles_go_as_is(ntfy, receiver, make_notification) -> None:
    _, channel = ntfy

    await channel.send(make_notification(channel, {"server": receiver.url, "topic": "t1"}, NotificationKind.UP))

    request = await receiver.next()
    assert request.headers["Title"] == "Example API is up again after 1h 2m 5s"
    assert (request.headers["Priority"], request.headers["Tags"]) == ("3", "green_circle,uptimed")
    assert "Authorization" not in request.headers


async def test_a_10000_character_name_fits_ntfy_limits(ntfy, receiver, make_notification) -> None:
    _, channel = ntfy

    await channel.send(
        make_notification(channel, {"server": receiver.url, "topic": "t1"}, name="\u00e9" * 10_000, reason="r" * 10_000)
    )

    request = await receiver.next()
    assert len(decode_title(request.headers["Title"])) <= 250
    assert len(request.body) <= 4096
    request.body.decode()  # not cut inside a UTF-8 sequence


async def test_429_is_retryable_and_403_permanent(ntfy, receiver, make_notification) -> None:
    _, channel = ntfy
    receiver.reply(status=429, body='{"code":42901,"http":429,"error":"limit reached"}', headers={"Retry-After": "2"})
    receiver.reply(status=403, body='{"code":40301,"http":403,"error":"forbidden"}')
    notification = make_notification(channel, {"server": receiver.url, "topic": "t1", "token": "tk_abcdefghijklmnop"})

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(notification)
    assert caught.value.retry_after == 2
    with pytest.raises(PermanentDeliveryError):
        await channel.send(notification)


def test_the_topic_and_token_are_secrets(ntfy) -> None:
    registry, _ = ntfy

    config = registry.validate_config("ntfy", {"topic": "ops-alerts-5f2c9e", "token": "tk_abcdefghijklmnop"})

    assert redacted_config(config) == {"topic": "…2c9e", "server": "https://ntfy.sh", "token": "…mnop", "priority": 4}
    with pytest.raises(InvalidConfigError):
        registry.validate_config("ntfy", {"topic": "a/b"})
