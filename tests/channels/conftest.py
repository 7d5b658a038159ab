"""Real local services for channel tests: an HTTP receiver, SMTP servers, certificates.

Nothing here fakes uptimed's own code. Third-party HTTP APIs (Slack, Discord,
Telegram) are mocked with respx in their test modules; everything that can
run locally (webhooks, SMTP, ntfy, Apprise's json://) runs for real.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support import install_plugins
from uptimed.channels.base import Links, Notification, NotificationKind
from uptimed.event import EventType, MonitorEvent

_TYPES = {
    NotificationKind.DOWN: EventType.DOWN,
    NotificationKind.REMINDER: EventType.DOWN,
    NotificationKind.UP: EventType.UP,
    NotificationKind.SLOW: EventType.SLOW,
    NotificationKind.ESCALATION: EventType.ESCALATED,
    NotificationKind.ACKNOWLEDGED: EventType.ACKNOWLEDGED,
    NotificationKind.TEST: EventType.DOWN,
}


def make_event(kind: NotificationKind = NotificationKind.DOWN, **fields: Any) -> MonitorEvent:
    values: dict[str, Any] = {
        "type": _TYPES[kind],
        "websiteId": 42,
        "userId": 7,
        "url": "https://status.example.com/health_check/v1.2?a=b",
        "name": "Example API",
        "responseTime": 1234.5,
        "regionId": "eu-west",
        "reason": "HTTP 503 Service Unavailable",
        "incidentId": 17,
        "timestamp": 1_700_000_000_000,
        "reminder": kind is NotificationKind.REMINDER,
    }
    if kind is NotificationKind.UP:
        values |= {"downtimeSeconds": 3725.0, "reason": None}
    if kind is NotificationKind.ESCALATION:
        values |= {
            "reason": "still down for 5m, escalated to step 2 of 3 (team lead): HTTP 503 Service Unavailable",
            "escalation": {"policy": "Ops", "step": 2, "steps": 3, "name": "team lead", "afterSeconds": 300},
            "integrationIds": [99],
        }
    if kind is NotificationKind.ACKNOWLEDGED:
        values |= {"reason": "acknowledged by alice on its page", "acknowledgedBy": "alice", "acknowledgedVia": "page"}
    values.update(fields)
    return MonitorEvent(**values)


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def make_notification(http_client: httpx.AsyncClient) -> Callable[..., Notification]:
    """``make_notification(channel, raw_config, kind=..., smtp=..., links=..., **event_fields)``."""

    def make(
        channel: Any,
        config: dict[str, Any],
        kind: NotificationKind = NotificationKind.DOWN,
        *,
        smtp: Any = None,
        links: Links | None = None,
        **event_fields: Any,
    ) -> Notification:
        return Notification(
            kind=kind,
            event=make_event(kind, **event_fields),
            config=channel.config_model.model_validate(config),
            http=http_client,
            smtp=smtp,
            integration_id=99,
            links=links or Links(),
        )

    return make


# --- HTTP receiver -----------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    """Never answer (until the test ends): for timeouts."""


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers as told."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[Received] = asyncio.Queue()
        self.replies: list[Reply] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(
        self, status: int = 200, body: str = "ok", headers: dict[str, str] | None = None, *, hang: bool = False
    ) -> None:
        """Answer the next request so (calls queue up in order); unqueued requests get 200 "ok"."""
        self.replies.append(Reply(status, body, headers or {}, hang))

    async def next(self, timeout: float = 10.0) -> Received:
        return await asyncio.wait_for(self.requests.get(), timeout)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.put_nowait(
            Received(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        reply = self.replies.pop(0) if self.replies else Reply()
        if reply.hang:
            await self._release.wait()
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- TLS material ------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A private CA and a server certificate it signed, for localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "uptimed test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


# --- SMTP server -------------------------------------------------------------------


@dataclass
class Mail:
    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage
    tls: bool
    authenticated_as: str | None


class SmtpServer:
    """aiosmtpd on loopback in this event loop; received mail lands in ``mail``."""

    def __init__(
        self, *, mode: str, tls_files: TlsFiles, users: dict[str, str], refuse: dict[str, str], host: str = "127.0.0.1"
    ) -> None:
        self.mode = mode
        self.host = host
        self.tls_files = tls_files
        self.users = users
        self.refuse = refuse
        self.mail: asyncio.Queue[Mail] = asyncio.Queue()
        self.port = 0
        self._server: asyncio.Server | None = None

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.mail.put_nowait(
            Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message, session.ssl is not None, login)
        )
        return "250 Message accepted"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.users.get(data.login.decode()) == data.password.decode()
        # handled=False: aiosmtpd then answers 535 itself
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    async def start(self) -> SmtpServer:
        loop = asyncio.get_running_loop()
        context = self.tls_files.server_context()

        def protocol() -> SMTP:
            return SMTP(
                self,
                hostname="localhost",
                tls_context=context if self.mode == "starttls" else None,
                require_starttls=self.mode == "starttls",
                authenticator=self._authenticate if self.users else None,
                auth_require_tls=True,
                loop=loop,
            )

        self._server = await loop.create_server(protocol, self.host, 0, ssl=context if self.mode == "tls" else None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def smtp_server(tls_files: TlsFiles) -> AsyncIterator[Callable[..., Any]]:
    """``await smtp_server(mode="starttls"|"tls"|"plain", users={...}, refuse={addr: reply}, host=...)``."""
    started: list[SmtpServer] = []

    async def start(
        mode: str = "starttls",
        *,
        users: dict[str, str] | None = None,
        refuse: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> SmtpServer:
        server = SmtpServer(mode=mode, tls_files=tls_files, users=users or {}, refuse=refuse or {}, host=host)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


# --- the example plugins, installed as real distributions ---------------------------


@pytest.fixture(scope="session")
def installed_plugins() -> None:
    """pip-install plugins/uptimed-ntfy and plugins/uptimed-apprise unless their current code is installed."""
    install_plugins({"uptimed-ntfy": "uptimed_ntfy", "uptimed-apprise": "uptimed_apprise"})
