"""One send of one notification through its channel: the path real alerts and test notifications share.

A channel reports a failure with its own :class:`~uptimed.channels.base.DeliveryError`
(retryable or permanent, and when the service wants to hear again); the rest
is sorted here, once: a send slower than the timeout is a retryable failure,
and any other exception is the channel's bug, named by its type only (its text
could carry a secret such as a URL) and retryable, since an error the channel
did not expect may well pass. Every error is scrubbed of the integration's
secrets first (:func:`~uptimed.channels.base.send_scrubbed`). The dispatcher records the outcome and retries;
a test notification shows it to its sender.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from uptimed.channels.base import Channel, DeliveryError, Notification, send_scrubbed


@dataclass(frozen=True)
class Attempt:
    """How one send went."""

    error: DeliveryError | None
    """None when the channel took the notification; otherwise why not, and whether a later attempt could pass."""
    seconds: float
    """How long the send took."""


async def deliver(channel: Channel, notification: Notification, *, timeout: float) -> Attempt:
    """Send ``notification`` through ``channel`` once, for at most ``timeout`` seconds; only cancellation raises."""
    started = time.monotonic()
    error: DeliveryError | None = None
    try:
        with anyio.fail_after(timeout):
            await send_scrubbed(channel, notification)  # no secret of the integration in an error
    except DeliveryError as exc:
        error = exc
    except TimeoutError:
        error = DeliveryError(f"timed out after {timeout:g} s")
    except Exception as exc:  # noqa: BLE001 - a plugin's bug is its delivery's failure, not the caller's
        error = DeliveryError(f"{type(exc).__name__} in channel {channel.name!r}")
    return Attempt(error, time.monotonic() - started)
