"""Posting to an HTTP endpoint the way every HTTP channel needs it.

Transport failures become :class:`~uptimed.channels.base.DeliveryError` s with
messages scrubbed of the URL and any other secret: the URLs of Slack, Discord
and Telegram carry their credentials, and httpx puts URLs into some exception
texts. The original exception is not chained for the same reason (a logged
traceback would print it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, SecretStr, WithJsonSchema

from uptimed.channels.base import (
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    error_for_status,
)

__all__ = ["SecretHttpUrl", "post", "raise_for_status", "scrub"]

_MASK = "***"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


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
