"""The email channel against a real aiosmtpd server: STARTTLS, implicit TLS, plain, and failures.

TLS uses a private CA made for the session; the client trusts it only through
``SmtpSettings.cafile``, so certificate verification stays on throughout.
"""

from __future__ import annotations

import dataclasses

import pytest

from uptimed.channels.base import (
    NotificationKind,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from uptimed.channels.email import EmailChannel
from uptimed.channels.registry import ChannelRegistry, InvalidConfigError
from uptimed.config import SmtpSettings

channel = EmailChannel()
TO = {"email": "ops@example.com"}


def settings(server, **overrides) -> SmtpSettings:
    values = {
        "host": "127.0.0.1",
        "port": server.port,
        "tls": server.mode if server.mode != "plain" else "none",
        "from_address": "uptimed@example.org",
        "timeout": 5,
        "cafile": server.tls_files.ca,
    }
    return SmtpSettings(**(values | overrides))


async def test_starttls_with_login_sends_both_parts(smtp_server, make_notification) -> None:
    server = await smtp_server("starttls", users={"alerts": "pa55word"})
    smtp = settings(server, username="alerts", password="pa55word")
    notification = make_notification(channel, TO, smtp=smtp, name="Shop <API> & co")

    await channel.send(notification)

    mail = await server.mail.get()
    assert mail.tls and mail.authenticated_as == "alerts"
    assert (mail.envelope_from, mail.envelope_to) == ("uptimed@example.org", ["ops@example.com"])
    message = mail.message
    assert message["Subject"] == "[DOWN] Shop <API> & co"
    assert message["From"] == "uptimed@example.org"
    assert message["To"] == "ops@example.com"
    assert message["X-Uptimed-Event-Id"] == str(notification.event.eventId)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "🔴 Shop <API> & co is DOWN" in text
    assert "URL: https://status.example.com/health_check/v1.2?a=b" in text
    assert "Reason: HTTP 503 Service Unavailable" in text
    assert "Shop &lt;API&gt; &amp; co" in html and "<API>" not in html
    assert "https://status.example.com/health_check/v1.2?a=b" in html


async def test_implicit_tls(smtp_server, make_notification) -> None:
    server = await smtp_server("tls")

    await channel.send(make_notification(channel, TO, NotificationKind.UP, smtp=settings(server)))

    mail = await server.mail.get()
    assert mail.message["Subject"] == "[UP] Example API"
    assert "Downtime: 1h 2m 5s" in mail.message.get_body(("plain",)).get_content()


async def test_plain_smtp(smtp_server, make_notification) -> None:
    server = await smtp_server("plain")

    await channel.send(make_notification(channel, TO, NotificationKind.SLOW, smtp=settings(server)))

    mail = await server.mail.get()
    assert not mail.tls
    assert mail.message["Subject"] == "[SLOW] Example API"


@pytest.mark.parametrize(
    ("kind", "subject"),
    [
        (NotificationKind.DOWN, "[DOWN] Example API"),
        (NotificationKind.UP, "[UP] Example API"),
        (NotificationKind.SLOW, "[SLOW] Example API"),
        (NotificationKind.REMINDER, "[REMINDER] Example API"),
        (NotificationKind.TEST, "[TEST] Example API"),
    ],
)
async def test_subject_per_kind(smtp_server, make_notification, kind, subject) -> None:
    server = await smtp_server("plain")

    await channel.send(make_notification(channel, TO, kind, smtp=settings(server)))

    assert (await server.mail.get()).message["Subject"] == subject


async def test_a_10000_character_name_with_line_breaks_makes_one_short_subject(smtp_server, make_notification) -> None:
    server = await smtp_server("plain")

    await channel.send(make_notification(channel, TO, smtp=settings(server), name="line\r\nBcc: x@evil.test " * 500))

    message = (await server.mail.get()).message
    assert len(message["Subject"]) <= 200 and "\n" not in message["Subject"]
    assert message["Bcc"] is None


async def test_an_untrusted_certificate_is_refused_permanently(smtp_server, make_notification) -> None:
    server = await smtp_server("starttls")
    smtp = settings(server, cafile=None)  # only the system CAs, which never signed the test cert

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, TO, smtp=smtp))
    assert "certificate verification failed" in caught.value.message
    assert server.mail.empty()


async def test_an_untrusted_certificate_on_implicit_tls_is_refused_permanently(smtp_server, make_notification) -> None:
    server = await smtp_server("tls")

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, TO, smtp=settings(server, cafile=None)))
    assert "certificate verification failed" in caught.value.message


async def test_a_certificate_for_another_host_is_refused(smtp_server, make_notification) -> None:
    # Trusted CA, but the certificate names localhost and 127.0.0.1, not 127.0.0.2.
    server = await smtp_server("tls", host="127.0.0.2")

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, TO, smtp=settings(server, host="127.0.0.2")))
    assert "certificate verification failed" in caught.value.message


async def test_starttls_required_but_not_offered_is_permanent(smtp_server, make_notification) -> None:
    server = await smtp_server("plain")

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, TO, smtp=settings(server, tls="starttls")))
    assert "STARTTLS" in caught.value.message


async def test_wrong_password_is_permanent(smtp_server, make_notification) -> None:
    server = await smtp_server("starttls", users={"alerts": "right"})

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, TO, smtp=settings(server, username="alerts", password="wrong")))
    assert "535" in caught.value.message
    assert "wrong" not in caught.value.message


async def test_a_refused_recipient_is_permanent(smtp_server, make_notification) -> None:
    server = await smtp_server("plain", refuse={"ops@example.com": "550 5.1.1 No such user"})

    with pytest.raises(PermanentDeliveryError) as caught:
        await channel.send(make_notification(channel, TO, smtp=settings(server)))
    assert "550" in caught.value.message


async def test_a_temporary_refusal_is_retryable(smtp_server, make_notification) -> None:
    server = await smtp_server("plain", refuse={"ops@example.com": "451 4.3.0 Try again later"})

    with pytest.raises(RetryableDeliveryError) as caught:
        await channel.send(make_notification(channel, TO, smtp=settings(server)))
    assert "451" in caught.value.message


async def test_no_server_is_retryable(closed_port, make_notification) -> None:
    smtp = SmtpSettings(host="127.0.0.1", port=closed_port, tls="none", timeout=5)

    with pytest.raises(RetryableDeliveryError):
        await channel.send(make_notification(channel, TO, smtp=smtp))


async def test_no_smtp_section_is_permanent(make_notification) -> None:
    with pytest.raises(PermanentDeliveryError):
        await channel.send(make_notification(channel, TO))


@pytest.mark.parametrize(
    "address", ["not-an-address", "a@", "@b.com", "a b@c.com", "a@b.com\r\nBcc: x@y.z", "a@-b.com", ""]
)
def test_bad_addresses_are_refused(address) -> None:
    registry = ChannelRegistry.from_channels([EmailChannel])

    with pytest.raises(InvalidConfigError):
        registry.validate_config("email", {"email": address})


def test_good_addresses_are_accepted() -> None:
    registry = ChannelRegistry.from_channels([EmailChannel])

    for address in ("ops@example.com", "first.last+alerts@mail.example.co.uk", "root@localhost"):
        assert registry.validate_config("email", {"email": f" {address} "}).email == address


async def test_every_attempt_at_one_event_and_integration_has_the_same_message_id(
    smtp_server, make_notification
) -> None:
    server = await smtp_server("plain")
    notification = make_notification(channel, TO, smtp=settings(server))

    await channel.send(notification)
    await channel.send(dataclasses.replace(notification, attempt=2))
    await channel.send(dataclasses.replace(notification, integration_id=100))

    first, second, other = [(await server.mail.get()).message for _ in range(3)]
    assert first["Message-ID"] == second["Message-ID"] == f"<uptimed.{notification.event.eventId}.99@example.org>"
    assert other["Message-ID"] != first["Message-ID"]
