"""Posting to an HTTP endpoint the way every HTTP channel needs it, and the client deliveries go out on.

Transport failures become :class:`~uptimed.channels.base.DeliveryError` s with
messages scrubbed of the URL and any other secret: the URLs of Slack, Discord
and Telegram carry their credentials, and httpx puts URLs into some exception
texts. The original exception is not chained for the same reason (a logged
traceback would print it).

:func:`delivery_client` is the shared client of every HTTP channel, plugins
included (``notification.http``): it connects only to addresses the target
policy allows (:mod:`uptimed.rules.targets`), resolving names itself and
connecting by address, so neither DNS rebinding nor a redirect gets around it;
it holds at most ``connections_per_destination`` requests to one host at once
(the rest wait), so one slow destination cannot take the whole pool; and it
reads at most :data:`MAX_RESPONSE_BYTES` of an answer.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import httpcore
import httpx
from pydantic import AfterValidator, SecretStr, WithJsonSchema

from uptimed import __version__
from uptimed.channels.base import (
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    error_for_status,
    refusal_of,
    scrub,
)
from uptimed.rules.targets import TargetPolicy, TargetRefused

__all__ = ["SecretHttpUrl", "delivery_client", "post", "raise_for_status", "scrub"]

MAX_RESPONSE_BYTES = 1024 * 1024
"""The most of an answer a delivery reads: enough for any service's reply, too little to fill the memory."""


class _PolicedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows."""

    def __init__(self, policy: TargetPolicy) -> None:
        self.policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self.policy.resolve(host, port)
        except TargetRefused as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:  # the name does not resolve
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
        failure: Exception | None = None
        # By address, never by name again: a second lookup could answer differently. TLS still
        # checks the certificate against the URL's host (httpcore passes it as the server name).
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() returns an address or raises
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a delivery never goes to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@dataclass
class _Destination:
    """Requests to one scheme, host and port: at most ``limit`` at once."""

    semaphore: anyio.Semaphore
    users: int = 0


@dataclass
class _Bounded(httpx.AsyncByteStream):
    """An answer's body, cut off past :data:`MAX_RESPONSE_BYTES`; closing it frees its destination's slot."""

    stream: httpx.AsyncByteStream
    release: Any
    read: int = 0
    closed: bool = field(default=False)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.read += len(chunk)
            if self.read > MAX_RESPONSE_BYTES:
                raise httpx.ReadError(f"the answer is larger than {MAX_RESPONSE_BYTES // 1024} KiB")
            yield chunk

    async def aclose(self) -> None:
        try:
            await self.stream.aclose()
        finally:
            if not self.closed:
                self.closed = True
                self.release()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certificate store deliveries verify against (certifi's), loaded once and shared by every client.

    Loading it costs ~17 ms of start-up and its memory each time; httpx would load it per transport.
    """
    return httpx.create_ssl_context(trust_env=False)


class DeliveryTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the target policy at the socket and a cap of connections per destination."""

    def __init__(self, *, policy: TargetPolicy, per_destination: int, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False, verify=tls_context())
        if policy.enforced:
            # The same pool httpx builds, on a network backend that checks each address it connects to.
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=tls_context(),
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=_PolicedBackend(policy),
            )
        self.per_destination = per_destination
        self._destinations: dict[tuple[bytes, bytes, int | None], _Destination] = {}

    @property
    def requests(self) -> int:
        """Requests in this transport now: sending, or waiting for their destination's turn."""
        return sum(destination.users for destination in self._destinations.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        destination = self._destinations.get(key)
        if destination is None:
            destination = self._destinations[key] = _Destination(anyio.Semaphore(self.per_destination))
        destination.users += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            destination.semaphore.release()
            forget()

        def forget() -> None:
            destination.users -= 1
            if destination.users == 0:
                self._destinations.pop(key, None)  # the map holds only destinations in use

        timeout = (request.extensions.get("timeout") or {}).get("pool")
        try:
            with anyio.fail_after(timeout):
                await destination.semaphore.acquire()
        except TimeoutError:
            forget()
            raise httpx.PoolTimeout(f"{self.per_destination} requests to this destination are in flight") from None
        except BaseException:
            forget()
            raise
        try:
            response = await super().handle_async_request(request)
        except BaseException:
            release()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Bounded(response.stream, release)
        return response


def delivery_client(
    *, timeout: float, policy: TargetPolicy, per_destination: int, max_connections: int = 300
) -> httpx.AsyncClient:
    """The client deliveries (and test sends) go out on, made with ``policy`` (``TRUSTED`` for the config file's).

    Redirects are not followed: a webhook that moved says so with its status.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=100)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": f"uptimed/{__version__}"},
        transport=DeliveryTransport(policy=policy, per_destination=per_destination, limits=limits),
        trust_env=False,
    )


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    secrets: Iterable[str] = (),
) -> httpx.Response:
    """POST and return the answer whatever its status; raise a DeliveryError if there is none.

    ``timeout`` overrides the client's for this request. ``secrets`` are
    masked in error messages beside the URL itself.
    """
    concealed = [url, *secrets]
    kwargs: dict[str, Any] = {"json": json, "content": content, "headers": headers}
    if timeout is not None:
        kwargs["timeout"] = timeout
    try:
        return await client.post(url, **kwargs)
    except httpx.TimeoutException as exc:
        error: DeliveryError = RetryableDeliveryError(f"timed out ({_describe(exc, concealed)})")
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        # The request itself is wrong (a bad URL or header): sending it again cannot help.
        error = PermanentDeliveryError(f"invalid request ({_describe(exc, concealed)})")
    except httpx.TransportError as exc:
        refused = refusal_of(exc)
        if refused is not None:  # the address will not be allowed on a later attempt either
            error = PermanentDeliveryError(str(refused))
        else:
            error = RetryableDeliveryError(_unreachable(exc, url, concealed))
    raise error from None


def _unreachable(exc: httpx.TransportError, url: str, secrets: list[str]) -> str:
    """Why the request never got an answer, in words: the host (never the path, which may hold a token) and what failed."""
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        host = ""
    where = host or "the destination"
    text = str(exc)
    cause = exc.__context__ or exc.__cause__
    reasons = f"{text} {cause or ''}".lower()
    if (
        "name or service not known" in reasons
        or "nodename nor servname" in reasons
        or "getaddrinfo" in reasons
        or "temporary failure in name resolution" in reasons
        or "no address associated" in reasons
    ):
        return f"{where} could not be resolved (DNS): check the host name and this server's DNS"
    if "connection refused" in reasons:
        return f"{where} refused the connection"
    if "network is unreachable" in reasons or "no route to host" in reasons:
        return f"{where} cannot be reached from this server (no route)"
    if "certificate" in reasons or "ssl" in reasons:
        return f"the TLS connection to {where} failed ({_describe(exc, secrets)})"
    return f"connection to {where} failed ({_describe(exc, secrets)})"


def raise_for_status(response: httpx.Response, *, retry_after: float | None = None) -> None:
    """Raise the DeliveryError an unsuccessful answer means; return on 1xx/2xx."""
    error = error_for_status(response, retry_after=retry_after)
    if error is not None:
        raise error


def _describe(exc: Exception, secrets: list[str]) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {scrub(text, secrets)}" if text else type(exc).__name__


def _check_http_url(value: SecretStr) -> SecretStr:
    # The message never repeats the value: the URL is a secret.
    try:
        url = httpx.URL(value.get_secret_value())
    except httpx.InvalidURL:
        raise ValueError("is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("must be an http:// or https:// URL")
    return value


SecretHttpUrl = Annotated[
    SecretStr,
    AfterValidator(_check_http_url),
    WithJsonSchema({"type": "string", "format": "password", "writeOnly": True}),
]
"""A secret http(s) URL: webhook URLs embed their tokens."""
