"""Links in alerts and the on-call kinds, in every built-in channel's message (issues 16 and 17).

With ``[api] public_url`` set an alert carries links to its monitor and its
incident, and an alert of an open incident a link that acknowledges it;
without it (``Links()``), none at all. Escalation and acknowledgement
notifications read as what they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from uptimed.channels import discord, email, slack, telegram, webhook
from uptimed.channels.base import Links, Notification, NotificationKind, headline

ACK = "https://uptime.example.com/ack/17/99/AbCdEfGhIjKlMnOpQrStUv"
LINKS = Links(
    monitor="https://uptime.example.com/monitors/42",
    incident="https://uptime.example.com/incidents/17",
    acknowledge=ACK,
)
SMTP_FROM = "uptimed@example.com"


def rendered(channel: str, notification: Notification) -> str:
    """Everything the channel would send, as text."""
    if channel == "webhook":
        return json.dumps(webhook.body(notification))
    if channel == "slack":
        return json.dumps(slack.message(notification))
    if channel == "discord":
        return json.dumps(discord.message(notification))
    if channel == "telegram":  # as the reader sees it: MarkdownV2's escapes undone
        return re.sub(r"\\(.)", r"\1", telegram.request_body(notification, notification.config)["text"])
    message = email.build_message(notification, sender=SMTP_FROM, recipient="ops@example.com")
    return str(message["Subject"]) + "\n".join(part.get_content() for part in message.iter_parts())


CHANNELS: dict[str, tuple[Any, dict[str, Any]]] = {
    "webhook": (webhook.WebhookChannel(), {"webhookUrl": "https://hooks.example/x"}),
    "slack": (slack.SlackChannel(), {"webhookUrl": "https://hooks.slack.com/services/T/B/x"}),
    "discord": (discord.DiscordChannel(), {"webhookUrl": "https://discord.com/api/webhooks/1/abc"}),
    "telegram": (telegram.TelegramChannel(), {"botToken": "123456:" + "A" * 30, "chatId": 42}),
    "email": (email.EmailChannel(), {"email": "ops@example.com"}),
}


@pytest.mark.parametrize("name", sorted(CHANNELS))
@pytest.mark.parametrize("kind", [NotificationKind.DOWN, NotificationKind.REMINDER, NotificationKind.ESCALATION])
def test_an_alert_of_an_open_incident_links_to_acknowledge_the_incident_and_the_monitor(
    make_notification: Callable[..., Notification], name: str, kind: NotificationKind
) -> None:
    channel, config = CHANNELS[name]
    text = rendered(name, make_notification(channel, config, kind, links=LINKS))
    for url in (ACK, LINKS.incident, LINKS.monitor):
        assert url in text, (name, url)


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_without_a_public_url_no_alert_carries_a_link(
    make_notification: Callable[..., Notification], name: str
) -> None:
    channel, config = CHANNELS[name]
    for kind in NotificationKind:
        text = rendered(name, make_notification(channel, config, kind))
        assert "/ack/" not in text and "/incidents/" not in text and "/monitors/" not in text
        assert "localhost" not in text and "127.0.0.1" not in text


def test_the_webhook_body_names_its_links(make_notification: Callable[..., Notification]) -> None:
    channel, config = CHANNELS["webhook"]
    body = webhook.body(make_notification(channel, config, NotificationKind.ESCALATION, links=LINKS))
    assert body["links"] == {"acknowledge": ACK, "incident": LINKS.incident, "monitor": LINKS.monitor}
    assert (body["event"], body["status"], body["kind"]) == ("incident.escalated", "down", "escalation")
    assert body["data"]["escalation"]["step"] == 2
    acked = webhook.body(make_notification(channel, config, NotificationKind.ACKNOWLEDGED))
    assert (acked["event"], acked["status"], acked["kind"]) == ("incident.acknowledged", "acknowledged", "acknowledged")
    assert acked["data"]["acknowledgedBy"] == "alice" and "links" not in acked


def test_slack_shows_the_links_as_buttons_acknowledge_first(make_notification: Callable[..., Notification]) -> None:
    channel, config = CHANNELS["slack"]
    blocks = slack.message(make_notification(channel, config, links=LINKS))["blocks"]
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert [(e["text"]["text"], e["url"]) for e in actions["elements"]] == [
        ("Acknowledge", ACK),
        ("Incident", LINKS.incident),
        ("Monitor", LINKS.monitor),
    ]
    assert actions["elements"][0]["style"] == "primary"


def test_email_links_are_anchors_in_html_and_lines_in_text(make_notification: Callable[..., Notification]) -> None:
    channel, config = CHANNELS["email"]
    message = email.build_message(
        make_notification(channel, config, links=LINKS), sender=SMTP_FROM, recipient="ops@example.com"
    )
    text, html = (part.get_content() for part in message.iter_parts())
    assert f"Acknowledge: {ACK}" in text
    assert f'<a href="{ACK}">Acknowledge</a>' in html


def test_the_on_call_kinds_read_as_what_they_are(make_notification: Callable[..., Notification]) -> None:
    channel, config = CHANNELS["webhook"]
    escalated = make_notification(channel, config, NotificationKind.ESCALATION)
    assert headline(escalated) == "🔴 Example API is still DOWN, escalated to step 2 of 3 (team lead)"
    acknowledged = make_notification(channel, config, NotificationKind.ACKNOWLEDGED)
    assert headline(acknowledged) == "🟠 Example API is DOWN, acknowledged by alice"
    mail = email.build_message(escalated, sender=SMTP_FROM, recipient="ops@example.com")
    assert mail["Subject"] == "[ESCALATED] Example API"
    text = next(mail.iter_parts()).get_content()
    assert "Escalation: step 2 of 3 (team lead), 5m after it went down; policy Ops" in text
