"""The ``http`` probe: one request on the shared aiohttp session, judged by the monitor's options.

This is the hot path (thousands of checks a second on one core), so a check
allocates little beyond what aiohttp needs: timeouts are cached per value, and
the body is read only when a keyword or JSON check needs it.
"""

from __future__ import annotations

import codecs
import functools
import json
import socket
import ssl
import sys
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult

from uptimed import __version__
from uptimed.check import CheckResult, CheckStatus, ErrorClass, now_ms
from uptimed.monitor import HttpOptions, Monitor
from uptimed.probe.base import CheckContext
from uptimed.probe.certificates import certificate_not_after
from uptimed.probe.tcp import describe_os_error
from uptimed.rules.targets import TargetPolicy, TargetRefused

USER_AGENT = f"uptimed/{__version__}"

MAX_BODY_BYTES = 2 * 1024 * 1024
"""How much of a body keyword and JSON checks read; a larger page is judged by its start."""

DNS_CACHE_TTL_S = 30
"""aiohttp caches resolved addresses this long, whatever the record's TTL: short, so a DNS failover shows soon."""

_MAX_ERROR_CHARS = 2000
_MAX_QUOTED_CHARS = 100

# CPython leaked aborted TLS transports before 3.12.8 / 3.13.1 unless aiohttp cleans them up;
# aiohttp warns when asked to on a fixed version.
_NEEDS_CLEANUP_CLOSED = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)


class ProbeResponse(aiohttp.ClientResponse):
    """A response that keeps the TLS object of the connection it arrived on.

    aiohttp hands a connection back to the pool as soon as a short body has
    arrived, often before ``request()`` returns, so ``response.connection`` is
    usually ``None`` by the time the probe could ask it for the certificate.
    """

    ssl_object: ssl.SSLObject | None = None

    async def start(self, connection: Any) -> ProbeResponse:
        transport = connection.transport
        if transport is not None:
            self.ssl_object = transport.get_extra_info("ssl_object")
        await super().start(connection)
        return self


class PolicedResolver(AbstractResolver):
    """Resolves as aiohttp does, then keeps only the addresses the target policy allows.

    A name whose every address is refused fails with the policy's reason
    (:class:`TargetRefused`) instead of a connection error to the last one.
    """

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self._resolver = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        allowed = set(self.policy.allowed([r["host"] for r in found], port, host=host))
        return [r for r in found if r["host"] in allowed]

    async def close(self) -> None:
        await self._resolver.close()


def policed_socket_factory(policy: TargetPolicy) -> Any:
    """An aiohttp ``socket_factory`` that refuses to open a socket to an address ``policy`` refuses.

    It sees the very address each connection goes to, for an IP in the URL,
    after DNS and on every redirect, which no check of the URL alone can.
    """

    def socket_for(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, address = addr_info
        policy.check(str(address[0]), int(address[1]))
        return socket.socket(family=family, type=type_, proto=proto)

    return socket_for


def make_session(
    *, limit: int, ssl_context: ssl.SSLContext | None = None, policy: TargetPolicy | None = None
) -> aiohttp.ClientSession:
    """The session every http check runs on; the caller owns it and closes it.

    ``limit`` caps simultaneous connections. ``ssl_context`` verifies
    certificates of monitors with ``verify_tls`` on (default: the system's
    trust store). With ``policy``, every connection the session opens is to
    an address the policy allows (:mod:`uptimed.rules.targets`): the session
    for users' monitors; without, the session for the config file's. Its
    connections are its own, so a trusted monitor's pooled connection is
    never reused for a user's request. Call it from the running event loop.
    """
    policed: dict[str, Any] = {}
    if policy is not None and policy.enforced:
        policed = {"resolver": PolicedResolver(policy), "socket_factory": policed_socket_factory(policy)}
    connector = aiohttp.TCPConnector(
        limit=limit,
        ttl_dns_cache=DNS_CACHE_TTL_S,
        ssl=ssl_context if ssl_context is not None else True,
        enable_cleanup_closed=_NEEDS_CLEANUP_CLOSED,
        **policed,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # One monitor's cookies must never reach another monitor's request.
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
        auto_decompress=True,
        response_class=ProbeResponse,
        trust_env=False,
    )


REGION_HEADER = "X-Uptimed-Region"


@functools.lru_cache(maxsize=128)
def _client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    # Covers the whole check: DNS, connect, TLS, redirects, headers and any body read.
    return aiohttp.ClientTimeout(total=seconds)


class HttpKind:
    """``http``: request a URL; judge its status, certificate, keyword and JSON."""

    name = "http"
    title = "HTTP(S)"
    config_model = HttpOptions
    target_help = "the URL to request: https://shop.example.com/health"

    def target_problem(self, target: str) -> str | None:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https"):
            return "an http monitor needs an http:// or https:// URL"
        if not parts.hostname:
            return "the URL has no host"
        return None

    async def check(self, monitor: Monitor, options: HttpOptions, context: CheckContext) -> CheckResult:
        if context.session is None:
            raise RuntimeError("the http kind needs the probe session (uptimed.probe.http.make_session)")
        return await check_http(
            monitor, region=context.region, session=context.session, scheduled_at_ms=context.scheduled_at_ms
        )


async def check_http(
    monitor: Monitor,
    *,
    region: str,
    session: aiohttp.ClientSession,
    scheduled_at_ms: int | None = None,
) -> CheckResult:
    """Request the monitor's URL and judge status, certificate, keyword and JSON.

    A target policy is the session's (:func:`make_session`), enforced on every connection and redirect.
    """
    options = monitor.http
    checked_at_ms = now_ms()
    status_code: int | None = None
    started = time.perf_counter()
    try:
        response = await session.request(
            options.method,
            monitor.target,
            # Targets (and their logs) can tell which region checked them.
            headers={**options.headers, REGION_HEADER: region} if options.headers else {REGION_HEADER: region},
            data=options.body,
            allow_redirects=options.follow_redirects,
            ssl=options.verify_tls,
            timeout=_client_timeout(monitor.timeout),
        )
        try:
            status_code = response.status
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            problem = _status_problem(status_code, options)
            if problem is None and options.cert_expiry_days is not None:
                problem = _certificate_problem(response, options.cert_expiry_days)
            if problem is None and (
                options.keyword is not None or options.keyword_absent is not None or options.json_path is not None
            ):
                body, truncated = await _read_body(response)
                elapsed_ms = (time.perf_counter() - started) * 1000.0
                problem = _body_problem(response, body, truncated, options)
        finally:
            # Without reading what is left of the body: aiohttp keeps the connection
            # when the body has already arrived and closes it otherwise.
            response.release()
    except Exception as exc:  # noqa: BLE001 - every failure of a check is a result; _classify names it
        error_class, error = _classify(exc, monitor)
        if isinstance(exc, aiohttp.TooManyRedirects) and exc.history:
            status_code = exc.history[-1].status
        return _down(monitor, region, error_class, error, status_code, None, checked_at_ms, scheduled_at_ms)
    if problem is not None:
        return _down(monitor, region, problem[0], problem[1], status_code, elapsed_ms, checked_at_ms, scheduled_at_ms)
    return CheckResult(
        monitor_id=monitor.id,
        region=region,
        status=CheckStatus.UP,
        response_time_ms=elapsed_ms,
        status_code=status_code,
        checked_at_ms=checked_at_ms,
        scheduled_at_ms=scheduled_at_ms,
    )


def _down(
    monitor: Monitor,
    region: str,
    error_class: ErrorClass,
    error: str,
    status_code: int | None,
    elapsed_ms: float | None,
    checked_at_ms: int,
    scheduled_at_ms: int | None,
) -> CheckResult:
    return CheckResult(
        monitor_id=monitor.id,
        region=region,
        status=CheckStatus.DOWN,
        response_time_ms=elapsed_ms,
        status_code=status_code,
        error_class=error_class,
        error=error[:_MAX_ERROR_CHARS],
        checked_at_ms=checked_at_ms,
        scheduled_at_ms=scheduled_at_ms,
    )


Problem = tuple[ErrorClass, str]


def _status_problem(status: int, options: HttpOptions) -> Problem | None:
    for accepted in options.accepted_statuses:
        if status in accepted:
            return None
    expected = ", ".join(str(accepted) for accepted in options.accepted_statuses)
    return ErrorClass.STATUS, f"HTTP {status}, expected {expected}"


def _certificate_problem(response: aiohttp.ClientResponse, warn_days: int) -> Problem | None:
    if not isinstance(response, ProbeResponse):
        return ErrorClass.OTHER, "cert_expiry_days needs a session made by uptimed.probe.http.make_session"
    if response.ssl_object is None:
        return ErrorClass.CERT_EXPIRY, f"no certificate to check: {response.url.scheme} is not TLS"
    # The binary form, because getpeercert() returns {} when verify_tls is off.
    der = response.ssl_object.getpeercert(binary_form=True)
    if der is None:
        return ErrorClass.CERT_EXPIRY, "the server sent no certificate"
    try:
        not_after = certificate_not_after(der)
    except (ValueError, IndexError):
        return ErrorClass.TLS, "cannot read the expiry date of the certificate"
    days_left = (not_after - time.time()) / 86400.0
    if days_left > warn_days:
        return None
    when = datetime.fromtimestamp(not_after, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if days_left < 0:
        return ErrorClass.CERT_EXPIRY, f"certificate expired {-days_left:.1f} days ago ({when})"
    return ErrorClass.CERT_EXPIRY, (
        f"certificate expires in {days_left:.1f} days ({when}), within the {warn_days}-day warning"
    )


async def _read_body(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """Up to ``MAX_BODY_BYTES`` of the (decompressed) body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    content = response.content
    while size <= MAX_BODY_BYTES:
        chunk = await content.read(MAX_BODY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if size > MAX_BODY_BYTES:
        return body[:MAX_BODY_BYTES], True
    return body, False


def _body_problem(
    response: aiohttp.ClientResponse, body: bytes, truncated: bool, options: HttpOptions
) -> Problem | None:
    where = f"the first {MAX_BODY_BYTES // (1024 * 1024)} MiB of the body" if truncated else "the body"
    if options.keyword is not None or options.keyword_absent is not None:
        text = _decode(body, response.charset)
        if options.keyword is not None and options.keyword not in text:
            return ErrorClass.KEYWORD, f"{_quote(options.keyword)} not found in {where}"
        if options.keyword_absent is not None and options.keyword_absent in text:
            return ErrorClass.KEYWORD, f"{_quote(options.keyword_absent)} found in {where}"
    if options.json_path is not None:
        return _json_problem(body, where, options.json_path, options.json_equals)
    return None


def _decode(body: bytes, charset: str | None) -> str:
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = None
    return body.decode(charset or "utf-8", errors="replace")


_MISSING = object()


def _json_problem(body: bytes, where: str, path: str, expected: Any) -> Problem | None:
    try:
        value = json.loads(body)
    except ValueError as exc:
        return ErrorClass.JSON, f"{where} is not JSON: {exc}"
    for segment in path.split("."):
        if isinstance(value, dict):
            value = value.get(segment, _MISSING)
        elif isinstance(value, list):
            try:
                value = value[int(segment)]
            except (ValueError, IndexError):
                value = _MISSING
        else:
            value = _MISSING
        if value is _MISSING:
            return ErrorClass.JSON, f"{_quote(path)} not found in {where} (at {_quote(segment)})"
    # Without json_equals the path only has to exist.
    if expected is not None and not _json_equal(value, expected):
        return ErrorClass.JSON, f"{_quote(path)} is {_json_text(value)}, expected {_json_text(expected)}"
    return None


def _json_equal(actual: Any, expected: Any) -> bool:
    """JSON equality: unlike Python's, ``true`` is not ``1``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(_json_equal(actual[k], expected[k]) for k in actual)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_json_equal, actual, expected))
    return bool(actual == expected)


def _json_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_QUOTED_CHARS else text[:_MAX_QUOTED_CHARS] + "…"


def _quote(text: str) -> str:
    return repr(text if len(text) <= _MAX_QUOTED_CHARS else text[:_MAX_QUOTED_CHARS] + "…")


def _classify(exc: Exception, monitor: Monitor) -> Problem:
    """Error class and a short message for an exception of a check; never the URL (it may hold a token)."""
    # Order matters: aiohttp's timeout, DNS and TLS errors are also connection errors.
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, TargetRefused):
        return ErrorClass.CONNECT, str(exc.os_error)
    if isinstance(exc, TimeoutError):
        return ErrorClass.TIMEOUT, f"no response within {monitor.timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ErrorClass.DNS, f"cannot resolve {exc.host}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return ErrorClass.TLS, f"TLS certificate of {exc.host}: {_ssl_reason(exc.certificate_error)}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return ErrorClass.TLS, f"TLS handshake with {exc.host} failed: {_ssl_reason(exc.os_error)}"
    if isinstance(exc, ssl.SSLError):
        return ErrorClass.TLS, f"TLS error: {_ssl_reason(exc)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorClass.CONNECT, f"cannot connect to {exc.host}:{exc.port}: {describe_os_error(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ErrorClass.CONNECT, "the server closed the connection without a response"
    if isinstance(exc, aiohttp.TooManyRedirects):
        last = exc.history[-1].status if exc.history else exc.status
        return ErrorClass.STATUS, f"HTTP {last} after {len(exc.history)} redirects"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ErrorClass.OTHER, "the body ended early or was malformed"
    if isinstance(exc, aiohttp.ClientResponseError):
        return ErrorClass.OTHER, f"invalid HTTP response: {exc.message}"
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return ErrorClass.CONNECT, f"connection failed: {exc}"
    return ErrorClass.OTHER, f"{type(exc).__name__}: {exc}"


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return exc.verify_message
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    return str(exc) or type(exc).__name__
