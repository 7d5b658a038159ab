"""One send through a channel, as real alerts and test notifications both make it: how each outcome is sorted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from pydantic import BaseModel

from uptimed.channels.base import Notification, NotificationKind, PermanentDeliveryError
from uptimed.event import EventType, MonitorEvent
from uptimed.notify.delivery import deliver


class NoConfig(BaseModel):
    pass


class Scripted:
    """A channel that does what the test says: return, raise, or take its time."""

    name = "scripted"
    config_model = NoConfig

    def __init__(self, *, raises: Exception | None = None, takes_s: float = 0.0) -> None:
        self.raises = raises
        self.takes_s = takes_s
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        await anyio.sleep(self.takes_s)
        if self.raises is not None:
            raise self.raises
        self.sent.append(notification)


@pytest.fixture
async def notification() -> AsyncIterator[Notification]:
    async with httpx.AsyncClient() as http:
        event = MonitorEvent(type=EventType.DOWN, websiteId=1, userId=1, url="https://example.com/")
        yield Notification(kind=NotificationKind.TEST, event=event, config=NoConfig(), http=http)


async def test_a_send_the_channel_takes_has_no_error(notification: Notification) -> None:
    channel = Scripted()
    attempt = await deliver(channel, notification, timeout=1)
    assert attempt.error is None and channel.sent == [notification]
    assert 0 <= attempt.seconds < 1


async def test_the_channels_own_error_is_passed_on_as_it_is(notification: Notification) -> None:
    gone = PermanentDeliveryError("HTTP 410: gone")
    attempt = await deliver(Scripted(raises=gone), notification, timeout=1)
    assert attempt.error is gone and not attempt.error.retryable


async def test_a_send_slower_than_the_timeout_is_a_retryable_failure(notification: Notification) -> None:
    attempt = await deliver(Scripted(takes_s=5), notification, timeout=0.05)
    assert attempt.error is not None
    assert (attempt.error.message, attempt.error.retryable) == ("timed out after 0.05 s", True)
    assert attempt.seconds < 1


async def test_a_channels_bug_is_named_by_its_type_only_and_retryable(notification: Notification) -> None:
    bug = KeyError("https://hooks.example/secret-token-QQQQ")
    attempt = await deliver(Scripted(raises=bug), notification, timeout=1)
    assert attempt.error is not None
    assert (attempt.error.message, attempt.error.retryable) == ("KeyError in channel 'scripted'", True)
