"""An integration's config: checked by its channel's own model, its secrets kept and masked; test sends.

The API, the pages and the config file accept exactly what the channel's
model accepts, with each problem at its location inside the request
(``("config", "webhookUrl")``; ``("type",)`` for a type that is not
installed). Secrets never leave in clear: :func:`masked` shows ``…`` plus the
last four characters, and an edit that leaves a secret out, or sends back its
masked form, keeps the stored one (:func:`keep_secrets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from uptimed.channels.base import Notification, NotificationKind
from uptimed.channels.registry import (
    ChannelRegistry,
    InvalidConfigError,
    UnknownChannelError,
    redact_secret,
    redacted_config,
    storable_config,
)
from uptimed.event import EventType, MonitorEvent
from uptimed.notify.delivery import deliver
from uptimed.rules.errors import Invalid, Problem
from uptimed.rules.services import Services
from uptimed.rules.targets import TRUSTED
from uptimed.store.integrations import Integration


def validated(registry: ChannelRegistry, type_: str, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` checked by channel ``type_``'s model, as JSON to store.

    :class:`Invalid` names the type (not installed) or each field the model refuses.
    """
    try:
        return storable_config(registry.validate_config(type_, raw))
    except UnknownChannelError as exc:
        raise Invalid([Problem(("type",), str(exc), "unknown_channel")], available=exc.available) from None
    except InvalidConfigError as exc:
        raise Invalid(p.within("config") for p in exc.problems) from None


MAX_NAME = 100


def default_name(registry: ChannelRegistry, type_: str, config: dict[str, Any]) -> str:
    """What an integration is called when nobody named it: its type and where it sends (``"Email to a@b.example"``).

    The destination is the first required field that is not a secret (an
    address, a chat id), else the host of a secret URL (a webhook's, never its
    path, which may hold a token) unless that host is the service itself
    (``hooks.slack.com`` says no more than "Slack").
    """
    title = registry.title(type_)
    try:
        fields = registry.config_fields(type_)
    except UnknownChannelError:
        return title[:MAX_NAME]
    destination: str | None = None
    for item in fields:
        value = config.get(item.name)
        if item.required and not item.secret and isinstance(value, str | int) and not isinstance(value, bool):
            destination = str(value)
            break
    if destination is None:
        for item in fields:
            value = config.get(item.name)
            if item.secret and isinstance(value, str) and value.startswith(("http://", "https://")):
                host = httpx.URL(value).host
                if host and type_.lower() not in host.lower():
                    destination = host
                break
    name = f"{title} to {destination}" if destination else title
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def name_of(registry: ChannelRegistry, integration: Integration) -> str:
    """What the pages, the log and the API call ``integration``: its name, else its type and destination."""
    return integration.name or default_name(registry, integration.type, integration.config)


def checked_name(name: str | None) -> str | None:
    """A name as typed, trimmed; None when empty (the default applies). :class:`Invalid` when too long."""
    if name is None or not name.strip():
        return None
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise Invalid([Problem(("name",), f"must be at most {MAX_NAME} characters", "string_too_long")])
    return name


def masked(registry: ChannelRegistry, integration: Integration) -> dict[str, Any]:
    """The stored config with its secrets masked; every string masked when the channel cannot read it."""
    try:
        return redacted_config(registry.validate_config(integration.type, integration.config))
    except (UnknownChannelError, InvalidConfigError):
        whole: dict[str, Any] = _mask_all(integration.config)
        return whole


def _mask_all(value: Any) -> Any:
    if isinstance(value, str):
        return redact_secret(value)
    if isinstance(value, dict):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(v) for v in value]
    return value


def keep_secrets(registry: ChannelRegistry, integration: Integration, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with each secret it leaves out, or sends back masked, taken from the stored config.

    A secret sent as ``None`` is removed (the pages' "remove" box for an optional one).
    """
    try:
        secret_names = [f.name for f in registry.config_fields(integration.type) if f.secret]
    except UnknownChannelError:
        return new
    merged = dict(new)
    for name in secret_names:
        stored = integration.config.get(name)
        if stored is None:
            continue
        merged[name] = _unmask(merged[name], stored) if name in merged else stored
    return merged


def _unmask(new: Any, stored: Any) -> Any:
    if isinstance(new, str) and isinstance(stored, str) and new == redact_secret(stored):
        return stored
    if isinstance(new, dict) and isinstance(stored, dict):
        return {k: _unmask(v, stored[k]) if k in stored else v for k, v in new.items()}
    return new


@dataclass(frozen=True)
class Outcome:
    """What happened to a test notification."""

    status: Literal["sent", "failed"]
    error: str | None = None
    """Why it failed, when it did."""
    retryable: bool | None = None
    """Whether the same failure could pass later."""


async def send_test(services: Services, user_id: int, integration: Integration) -> Outcome:
    """Deliver a synthetic event through ``integration``'s channel now, as the dispatcher delivers a real one.

    The same send (:func:`~uptimed.notify.delivery.deliver`, with the same
    timeout and the same sorting of errors); nothing is written to the log.
    :class:`~uptimed.rules.quotas.RateLimited` beyond ``[quotas] test_sends_per_minute``.
    """
    services.limits.test_send(user_id)
    try:
        channel = services.registry.get(integration.type)
        config = services.registry.validate_config(integration.type, integration.config)
    except (UnknownChannelError, InvalidConfigError) as exc:
        return Outcome(status="failed", error=str(exc), retryable=False)
    event = MonitorEvent(
        type=EventType.DOWN,
        websiteId=0,
        userId=user_id,
        url="https://example.com/",
        name=name_of(services.registry, integration),  # the headline: "Test notification from uptimed to <name>"
        reason="a test sent from uptimed to check this integration: nothing is down",
    )
    notification = Notification(
        kind=NotificationKind.TEST,
        event=event,
        config=config,
        http=(services.trusted_http or services.http) if integration.declared_in_file else services.http,
        smtp=services.settings.smtp,
        integration_id=integration.id,
        policy=TRUSTED if integration.declared_in_file else services.policy,
    )
    error = (await deliver(channel, notification, timeout=services.settings.notify.delivery_timeout)).error
    if error is not None:
        return Outcome(status="failed", error=error.message, retryable=error.retryable)
    return Outcome(status="sent")
