"""plugins/uptimed-apprise, installed with pip, delivering through Apprise's json:// to a real local server."""

from __future__ import annotations

import importlib.metadata

import pytest

from uptimed.channels.base import NotificationKind, RetryableDeliveryError
from uptimed.channels.registry import (
    ChannelRegistry,
    InvalidConfigError,
    redacted_config,
)

pytestmark = pytest.mark.usefixtures("installed_plugins")


@pytest.fixture
def apprise_channel():
    registry = ChannelRegistry.discover()
    broken = [b.reason for b in registry.broken if b.name == "apprise"]
    assert not broken, f"the apprise plugin did not load (is the apprise package installed?): {broken}"
    return registry, registry.get("apprise")


def test_discovered_through_its_entry_point(apprise_channel) -> None:
    registry, _ = apprise_channel

    loaded = registry.channels["apprise"]
    assert (loaded.distribution, loaded.version) == ("uptimed-apprise", importlib.metadata.version("uptimed-apprise"))


@pytest.mark.parametrize(
    ("kind", "apprise_type", "title"),
    [
        (NotificationKind.DOWN, "failure", "🔴 Example API is DOWN"),
        (NotificationKind.UP, "success", "🟢 Example API is UP again after 1h 2m 5s"),
        (NotificationKind.SLOW, "warning", "🟡 Example API is SLOW"),
        (NotificationKind.TEST, "info", "✅ Test notification from uptimed to Example API"),
    ],
)
async def test_delivers_end_to_end_through_json_url(
    apprise_channel, receiver, make_notification, kind, apprise_type, title
) -> None:
    registry, channel = apprise_channel
    config = {"url": f"json://127.0.0.1:{receiver.port}/uptimed-hook"}
    registry.validate_config("apprise", config)

    # The receiver runs on this event loop: were Apprise run on the loop, it could never answer.
    await channel.send(make_notification(channel, config, kind))

    request = await receiver.next()
    assert (request.method, request.path) == ("POST", "/uptimed-hook")
    body = request.json()
    assert (body["title"], body["type"]) == (title, apprise_type)
    assert "URL: https://status.example.com/health_check/v1.2?a=b" in body["message"]


async def test_a_failed_delivery_is_retryable_and_masks_credentials(
    apprise_channel, receiver, make_notification
) -> None:
    _, channel = apprise_channel
    receiver.reply(status=500, body="down for maintenance")
    config = {"url": f"json://alerts:hunter2-s3cret@127.0.0.1:{receiver.port}/hook"}

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, config))
    await receiver.next()  # it did reach the server
    assert "hunter2-s3cret" not in str(caught.value)


async def test_an_unreachable_service_is_retryable(apprise_channel, closed_port, make_notification) -> None:
    _, channel = apprise_channel

    with pytest.raises(RetryableDeliveryError):
        await channel.send(make_notification(channel, {"url": f"json://127.0.0.1:{closed_port}/"}))


def test_urls_apprise_cannot_load_are_refused_up_front(apprise_channel) -> None:
    registry, _ = apprise_channel

    with pytest.raises(InvalidConfigError) as caught:
        registry.validate_config("apprise", {"url": "nosuchscheme://token-abc123/x"})
    assert "token-abc123" not in str(caught.value)


def test_the_url_is_a_secret(apprise_channel) -> None:
    registry, _ = apprise_channel

    config = registry.validate_config("apprise", {"url": "pover://userkey1234567890@apptoken0987654321"})

    assert redacted_config(config) == {"url": "…4321"}
