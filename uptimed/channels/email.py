"""Email: a multipart/alternative message (plain text and HTML) over SMTP.

The ``[smtp]`` section says how to reach the server: plain, STARTTLS
(required, never silently skipped) or implicit TLS, always verifying the
server's certificate against the system CAs plus an optional ``cafile``.

How failures are classed: connection problems, timeouts and 4xx replies are
retryable; 5xx replies (a refused recipient, failed authentication) and TLS
failures are permanent. An untrusted or mismatched certificate does not fix
itself between retries; it needs an operator, and failing at once says so.
"""

from __future__ import annotations

import html
import re
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import ClassVar

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, field_validator

from uptimed.channels.base import (
    DeliveryError,
    Notification,
    NotificationKind,
    PermanentDeliveryError,
    RetryableDeliveryError,
    clip,
    details,
    headline,
    links,
)
from uptimed.config import SmtpSettings

SUBJECT_LIMIT = 200
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_TAGS = {
    NotificationKind.DOWN: "DOWN",
    NotificationKind.UP: "UP",
    NotificationKind.SLOW: "SLOW",
    NotificationKind.REMINDER: "REMINDER",
    NotificationKind.ESCALATION: "ESCALATED",
    NotificationKind.ACKNOWLEDGED: "ACKNOWLEDGED",
    NotificationKind.TEST: "TEST",
}


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254, description="the address to send alerts to")

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if not _ADDRESS.fullmatch(value):
            raise ValueError("is not an email address")
        return value


def subject(notification: Notification) -> str:
    """``[DOWN] name``, ``[UP] name``, ...: one line, whatever the monitor is called."""
    name = _CONTROL.sub(" ", notification.monitor_name).strip()
    tag = _TAGS.get(notification.kind, notification.kind.value.upper())
    return clip(f"[{tag}] {name}", SUBJECT_LIMIT)


def build_message(notification: Notification, *, sender: str, recipient: str) -> EmailMessage:
    """The message, with a text/plain and a text/html part."""
    event = notification.event
    title = headline(notification)
    facts = details(notification)
    footer = f"uptimed · event {event.eventId}"
    if event.incidentId is not None:
        footer = f"uptimed · incident #{event.incidentId} · event {event.eventId}"

    found = links(notification)
    lines = [f"{label}: {url}" for label, url in found]
    text = "\n".join([title, "", *(f"{label}: {value}" for label, value in facts), *(["", *lines] if lines else [])])
    text += "\n\n-- \n" + footer + "\n"
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{html.escape(label)}</th>'
        f"<td>{html.escape(value)}</td></tr>"
        for label, value in facts
    )
    anchors = " · ".join(f'<a href="{html.escape(url)}">{html.escape(label)}</a>' for label, url in found)
    body = (
        '<!DOCTYPE html><html><body style="font-family:sans-serif">'
        f"<h2>{html.escape(title)}</h2><table>{rows}</table>"
        + (f"<p>{anchors}</p>" if anchors else "")
        + f'<p style="color:#888;font-size:small">{html.escape(footer)}</p>'
        "</body></html>"
    )

    message = EmailMessage()
    message["Subject"] = subject(notification)
    message["From"] = sender
    message["To"] = recipient
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id(notification, sender=sender)
    message["X-Uptimed-Event-Id"] = str(event.eventId)
    message.set_content(text)
    message.add_alternative(body, subtype="html")
    return message


def message_id(notification: Notification, *, sender: str) -> str:
    """The same for every attempt at one (event, integration), so a second copy threads with or replaces the first."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    if notification.integration_id is None:  # a test send from the pages or the API: no log row to match
        return make_msgid(domain=domain)
    return f"<uptimed.{notification.event.eventId}.{notification.integration_id}@{domain or 'uptimed.invalid'}>"


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """System CAs plus ``settings.cafile``; hostname checking on."""
    context = ssl.create_default_context()
    if settings.cafile is not None:
        context.load_verify_locations(cafile=str(settings.cafile))
    return context


class EmailChannel:
    """Sends alerts by email through the configured SMTP server."""

    name: ClassVar[str] = "email"
    config_model: ClassVar[type[BaseModel]] = EmailConfig

    async def send(self, notification: Notification) -> None:
        config: EmailConfig = notification.config
        settings = notification.smtp
        if settings is None:
            raise PermanentDeliveryError("email needs an [smtp] section in the configuration")
        message = build_message(notification, sender=settings.from_address, recipient=config.email)
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=settings.port,
                use_tls=settings.tls == "tls",
                start_tls=settings.tls == "starttls",
                tls_context=tls_context(settings),
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else None,
                timeout=settings.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise delivery_error(exc) from exc


def delivery_error(exc: BaseException) -> DeliveryError:
    """What an SMTP failure means for retrying."""
    if tls := _tls_failure(exc):
        reason = "certificate verification failed" if isinstance(tls, ssl.SSLCertVerificationError) else "TLS failed"
        return PermanentDeliveryError(f"SMTP {reason}: {tls}")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        cls = PermanentDeliveryError if codes and all(code >= 500 for code in codes) else RetryableDeliveryError
        return cls(f"SMTP recipient refused: {text}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        cls = PermanentDeliveryError if exc.code >= 500 else RetryableDeliveryError
        return cls(f"SMTP {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or "not supported" in str(exc):
        # The server lacks what the config asks for (STARTTLS, AUTH).
        return PermanentDeliveryError(f"SMTP: {exc}")
    return RetryableDeliveryError(f"SMTP: {exc or type(exc).__name__}")


def _tls_failure(exc: BaseException | None) -> ssl.SSLError | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None
