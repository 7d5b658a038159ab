"""The tls kind against TLS servers on 127.0.0.1 with certificates made here: valid, expiring, expired, wrong name.

Each certificate is signed by a CA of this module, which the monitors trust
through their ``ca`` option (as a deployment with an internal CA would). One
server speaks SMTP and upgrades with STARTTLS (aiosmtpd).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.probe.conftest import make_monitor
from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.probe.certificates import certificate_facts
from uptimed.probe.kinds import run_probe


@dataclass(frozen=True)
class Pki:
    ca_pem: str
    ca_key: ec.EllipticCurvePrivateKey
    ca_name: x509.Name
    folder: Path

    def issue(
        self, *, days: float, names: tuple[str, ...] = ("localhost",), cn: str = "shop.test"
    ) -> tuple[Path, Path]:
        """A certificate (for ``names`` and 127.0.0.1) ending ``days`` from now (past if < 0), and its key: PEM files."""
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        not_after = now + dt.timedelta(days=days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(now, not_after) - dt.timedelta(days=30))
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName(
                    [*(x509.DNSName(n) for n in names), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        stem = self.folder / uuid.uuid4().hex
        cert_path, key_path = stem.with_suffix(".pem"), stem.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path

    def server_context(self, **certificate: Any) -> ssl.SSLContext:
        """A server context with a certificate :meth:`issue` makes."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self.issue(**certificate))
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "uptimed kinds test CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "uptimed"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Pki(ca.public_bytes(serialization.Encoding.PEM).decode(), key, name, tmp_path_factory.mktemp("tls-kind"))


async def _serve(context: ssl.SSLContext) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def tls_server(pki: Pki) -> AsyncIterator[Any]:
    """``await tls_server(days=..., names=...)``: the port of a TLS server with such a certificate."""
    servers: list[asyncio.Server] = []

    async def start(**certificate: Any) -> int:
        server, port = await _serve(pki.server_context(**certificate))
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def tls_check(pki: Pki, target: str, **options: Any) -> CheckResult:
    monitor = make_monitor(target, kind="tls", timeout=3.0, options={"ca": pki.ca_pem, **options})
    return await run_probe(monitor, region="eu-west")


async def test_a_valid_certificate_is_up_with_its_days_subject_and_issuer(pki: Pki, tls_server: Any) -> None:
    port = await tls_server(days=90)

    result = await tls_check(pki, f"127.0.0.1:{port}", server_name="localhost")

    assert result.status is CheckStatus.UP, result.error
    assert result.message is not None
    assert re.fullmatch(
        r"expires in (89\.9|90\.0) days \(\S+Z\); subject CN=shop.test; issuer CN=uptimed kinds test CA, O=uptimed",
        result.message,
    )
    assert result.response_time_ms is not None and result.response_time_ms > 0


async def test_a_certificate_expiring_within_the_warning_is_down(pki: Pki, tls_server: Any) -> None:
    port = await tls_server(days=5)

    soon = await tls_check(pki, f"127.0.0.1:{port}", expiry_days=14)
    later = await tls_check(pki, f"127.0.0.1:{port}", expiry_days=3)

    assert soon.status is CheckStatus.DOWN and soon.error_class is ErrorClass.CERT_EXPIRY
    assert soon.error is not None and re.fullmatch(
        r"certificate expires in (4\.9|5\.0) days \(\S+Z\), within the 14-day warning", soon.error
    )
    assert later.status is CheckStatus.UP, later.error


async def test_an_expired_certificate_is_down_saying_when_it_expired(pki: Pki, tls_server: Any) -> None:
    port = await tls_server(days=-3)

    result = await tls_check(pki, f"127.0.0.1:{port}")

    assert result.status is CheckStatus.DOWN and result.error_class is ErrorClass.CERT_EXPIRY
    assert result.error == "certificate does not verify: certificate has expired"
    assert result.message is not None and result.message.startswith("expired 3.0 days ago (")


async def test_a_certificate_for_another_name_is_down(pki: Pki, tls_server: Any) -> None:
    port = await tls_server(days=90, names=("localhost",))

    result = await tls_check(pki, f"127.0.0.1:{port}", server_name="shop.example.net")

    assert result.status is CheckStatus.DOWN and result.error_class is ErrorClass.TLS
    assert result.error == (
        "certificate does not verify: Hostname mismatch, certificate is not valid for 'shop.example.net'."
    )
    assert result.message is not None and "subject CN=shop.test" in result.message


async def test_an_untrusted_chain_is_down(pki: Pki, tls_server: Any) -> None:
    port = await tls_server(days=90)

    monitor = make_monitor(f"127.0.0.1:{port}", kind="tls", timeout=3.0, options={})  # the system's CAs only
    result = await run_probe(monitor, region="eu-west")

    assert result.status is CheckStatus.DOWN and result.error_class is ErrorClass.TLS
    assert result.error == "certificate does not verify: unable to get local issuer certificate"


async def test_a_closed_port_and_a_server_that_hangs_up_are_down(pki: Pki, closed_port: int, hang_up_port: int) -> None:
    closed = await tls_check(pki, f"127.0.0.1:{closed_port}")
    plain = await tls_check(pki, f"127.0.0.1:{hang_up_port}")

    assert (closed.error_class, closed.error) == (
        ErrorClass.CONNECT,
        f"cannot connect to 127.0.0.1:{closed_port}: connection refused",
    )
    assert plain.status is CheckStatus.DOWN and plain.error_class in (ErrorClass.TLS, ErrorClass.CONNECT), plain.error


class _Quiet:
    """aiosmtpd's handler: accepts nothing, the handshake is all the test needs."""


@pytest.fixture
async def smtp_starttls(pki: Pki) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    context = pki.server_context(days=60, names=("mail.test", "localhost"), cn="mail.test")

    def protocol() -> SMTP:
        return SMTP(_Quiet(), hostname="mail.test", tls_context=context, require_starttls=True, loop=loop)

    server = await loop.create_server(protocol, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_smtp_starttls_upgrades_before_the_handshake(pki: Pki, smtp_starttls: int) -> None:
    result = await tls_check(pki, f"127.0.0.1:{smtp_starttls}", starttls="smtp", server_name="mail.test")
    plain = await tls_check(pki, f"127.0.0.1:{smtp_starttls}", server_name="mail.test")

    assert result.status is CheckStatus.UP, result.error
    assert result.message is not None and "subject CN=mail.test" in result.message
    assert plain.status is CheckStatus.DOWN  # without STARTTLS the server speaks SMTP, not TLS


async def test_starttls_against_a_server_that_does_not_offer_it(pki: Pki) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 old.test ESMTP\r\n")
        await reader.readline()
        writer.write(b"250-old.test\r\n250 SIZE 1000\r\n")
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await tls_check(pki, f"127.0.0.1:{port}", starttls="smtp")
    finally:
        server.close()
    assert (result.error_class, result.error) == (ErrorClass.TLS, "the SMTP server does not offer STARTTLS")


def test_certificate_facts_read_validity_subject_and_issuer(pki: Pki) -> None:
    cert, _ = pki.issue(days=10, cn="facts.test")
    facts = certificate_facts(ssl.PEM_cert_to_DER_cert(cert.read_text()))
    assert facts.subject == "CN=facts.test" and facts.issuer == "CN=uptimed kinds test CA, O=uptimed"
    assert 9.9 < (facts.not_after - dt.datetime.now(dt.UTC).timestamp()) / 86400 <= 10
