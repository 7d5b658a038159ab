"""Real local targets for the probes: HTTP and HTTPS servers on 127.0.0.1, and the session.

Nothing here talks to anything but 127.0.0.1, and DNS failures use names
under ``.invalid`` (RFC 6761), which never resolve.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from uptimed.check import CheckResult
from uptimed.monitor import Monitor
from uptimed.probe.http import make_session
from uptimed.probe.kinds import run_probe

CERT_DAYS = 5
"""Days until the test certificates expire."""

STATUS_PAGE = "<html><body><h1>All systems operational</h1></body></html>"
MAINTENANCE_PAGE = "<html><body><h1>Down for maintenance</h1></body></html>"
HEALTH = {"status": "ok", "checks": [{"name": "db", "ok": True}, {"name": "cache", "ok": False}], "workers": 1}


def make_monitor(
    target: str, *, kind: str = "http", timeout: float = 2.0, options: dict[str, Any] | None = None, **http: Any
) -> Monitor:
    """A stored monitor checking ``target``; ``http`` are its HttpOptions, ``options`` its kind's (another kind)."""
    return Monitor.model_validate(
        {
            "id": 42,
            "owner_id": 7,
            "name": "test monitor",
            "kind": kind,
            "target": target,
            "interval": max(1.0, timeout),
            "timeout": timeout,
            "http": http,
            **({kind: options} if options is not None else {}),
        }
    )


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    """PEM of the CA the test session trusts."""
    trusted_cert: Path
    """Certificate for 127.0.0.1 signed by ``ca``."""
    trusted_key: Path
    untrusted_cert: Path
    """Self-signed certificate for 127.0.0.1 that nothing trusts."""
    untrusted_key: Path


def _write_certs_with_cryptography(folder: Path) -> TlsFiles:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def write(stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
        cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path

    def leaf(subject: x509.Name, issuer: x509.Name, key: Any, signer: Any) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .sign(signer, hashes.SHA256())
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("uptimed test CA"))
        .issuer_name(name("uptimed test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, _ = write("ca", ca_cert, ca_key)
    trusted_key = ec.generate_private_key(ec.SECP256R1())
    trusted = leaf(name("127.0.0.1"), ca_cert.subject, trusted_key, ca_key)
    trusted_paths = write("trusted", trusted, trusted_key)
    untrusted_key = ec.generate_private_key(ec.SECP256R1())
    untrusted = leaf(name("127.0.0.1"), name("127.0.0.1"), untrusted_key, untrusted_key)
    untrusted_paths = write("untrusted", untrusted, untrusted_key)
    return TlsFiles(ca_path, *trusted_paths, *untrusted_paths)


def _write_certs_with_openssl(folder: Path) -> TlsFiles:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
    run("req", "-x509", *ec_key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=uptimed test CA")
    run("req", "-new", *ec_key, "-keyout", "trusted.key", "-out", "trusted.csr", "-subj", "/CN=127.0.0.1")
    (folder / "trusted.ext").write_text(f"basicConstraints=critical,CA:FALSE\n{san}\n")
    run("x509", "-req", "-in", "trusted.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", str(CERT_DAYS), "-extfile", "trusted.ext", "-out", "trusted.pem")  # fmt: skip
    run("req", "-x509", *ec_key, "-keyout", "untrusted.key", "-out", "untrusted.pem", "-days", str(CERT_DAYS),
        "-subj", "/CN=127.0.0.1", "-addext", san)  # fmt: skip
    return TlsFiles(
        *(folder / name for name in ("ca.pem", "trusted.pem", "trusted.key", "untrusted.pem", "untrusted.key"))
    )


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    folder = tmp_path_factory.mktemp("tls")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("needs the cryptography package or the openssl command to make test certificates")
        return _write_certs_with_openssl(folder)
    return _write_certs_with_cryptography(folder)


class Target:
    """The local web app the http probes check, and its base URLs."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        """Set only at teardown, so 'slow' handlers hang for as long as any test waits."""
        self.url = ""
        self.trusted_tls_url = ""
        self.untrusted_tls_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.status_page)
        app.router.add_get("/maintenance", self.maintenance_page)
        app.router.add_get("/error", self.error)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/redirect-loop", self.redirect_loop)
        app.router.add_get("/health", self.health)
        app.router.add_get("/not-json", self.status_page)
        app.router.add_get("/gzip", self.gzip_page)
        app.router.add_get("/large", self.large_page)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/slow-body", self.slow_body)
        app.router.add_get("/set-cookie", self.set_cookie)
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_post("/orders", self.orders)
        return app

    async def status_page(self, request: web.Request) -> web.Response:
        return web.Response(text=STATUS_PAGE, content_type="text/html")

    async def maintenance_page(self, request: web.Request) -> web.Response:
        return web.Response(text=MAINTENANCE_PAGE, content_type="text/html")

    async def error(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="Internal Server Error")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/")

    async def redirect_loop(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/redirect-loop")

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(HEALTH)

    async def gzip_page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(STATUS_PAGE.encode()),
            headers={"Content-Type": "text/html", "Content-Encoding": "gzip"},
        )

    async def large_page(self, request: web.Request) -> web.Response:
        """3 MiB of page, its footer last."""
        return web.Response(text="<html><body>" + " " * (3 * 1024 * 1024) + "<footer>Status: ok</footer>")

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="too late")

    async def slow_body(self, request: web.Request) -> web.StreamResponse:
        """Headers and the start of a page at once, the rest never."""
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        response.content_length = 1_000_000
        await response.prepare(request)
        await response.write(b"<html><body>" + b" " * 1000)
        await self.release.wait()
        return response

    async def set_cookie(self, request: web.Request) -> web.Response:
        response = web.Response(text="cookie set")
        response.set_cookie("session", "from-another-monitor")
        return response

    async def echo(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "user_agent": request.headers.get("User-Agent"),
                "region": request.headers.get("X-Uptimed-Region"),
                "cookie": request.headers.get("Cookie"),
                "body": await request.text(),
            }
        )

    async def orders(self, request: web.Request) -> web.Response:
        """Accepts only an authorised JSON order, like a real API a user would monitor."""
        if request.headers.get("Authorization") != "Bearer s3cret":
            return web.Response(status=401)
        if await request.json() != {"item": "probe"}:
            return web.Response(status=400)
        return web.json_response({"order": {"state": "accepted"}}, status=201)


def _tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture(scope="session")
async def target(tls_files: TlsFiles) -> AsyncIterator[Target]:
    """One app served over http, over https with a trusted certificate and over https with an untrusted one."""
    target = Target()
    runner = web.AppRunner(target.app())
    await runner.setup()
    sites = [
        web.TCPSite(runner, "127.0.0.1", 0),
        web.TCPSite(runner, "127.0.0.1", 0, ssl_context=_tls_context(tls_files.trusted_cert, tls_files.trusted_key)),
        web.TCPSite(
            runner, "127.0.0.1", 0, ssl_context=_tls_context(tls_files.untrusted_cert, tls_files.untrusted_key)
        ),
    ]
    ports = []
    for site in sites:
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    target.url = f"http://127.0.0.1:{ports[0]}"
    target.trusted_tls_url = f"https://127.0.0.1:{ports[1]}"
    target.untrusted_tls_url = f"https://127.0.0.1:{ports[2]}"
    yield target
    target.release.set()
    await runner.cleanup()


Check = Callable[..., Awaitable[CheckResult]]


@pytest.fixture
def check(session: aiohttp.ClientSession) -> Check:
    """``await check(target, **monitor_fields)``: one run_probe of a monitor, as the worker does it."""

    async def check(target: str, **fields: Any) -> CheckResult:
        return await run_probe(make_monitor(target, **fields), region="eu-west", session=session, scheduled_at_ms=1_000)

    return check


@pytest.fixture
def cert_days() -> int:
    """Days until the test certificates expire."""
    return CERT_DAYS


@pytest.fixture
async def session(tls_files: TlsFiles) -> AsyncIterator[aiohttp.ClientSession]:
    """A probe session that trusts the test CA, as a deployment would trust its own."""
    session = make_session(limit=100, ssl_context=ssl.create_default_context(cafile=str(tls_files.ca)))
    yield session
    await session.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that was just in use and now refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def hanging_port() -> AsyncIterator[int]:
    """A port whose listen queue is full, so a new connect gets no answer at all.

    The socket listens but never accepts; once its backlog is taken, Linux
    drops further SYNs and a connect waits until it times out.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(16):
            try:
                async with asyncio.timeout(0.2):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
            except TimeoutError:
                break
            fillers.append(writer)
        else:
            pytest.skip("this system answers connects beyond the listen backlog")
        yield port
    finally:
        for writer in fillers:
            writer.close()
        listener.close()


@pytest.fixture
async def tcp_server() -> AsyncIterator[tuple[int, asyncio.Queue[bytes]]]:
    """A TCP server on 127.0.0.1; each connection puts what it received until EOF on the queue."""
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.put_nowait(await reader.read())
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], received
    server.close()
    await server.wait_closed()


@pytest.fixture
async def hang_up_port() -> AsyncIterator[int]:
    """A server that accepts a connection and closes it without answering."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def redis(services: dict[str, str]) -> AsyncIterator[aioredis.Redis]:
    """A client of the test Redis."""
    client = aioredis.from_url(services["UPTIMED_REDIS__URL"])
    yield client
    await client.aclose()


@pytest.fixture
async def key_prefix(redis: aioredis.Redis) -> AsyncIterator[str]:
    """A Redis key prefix of this test alone; its keys are removed afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
