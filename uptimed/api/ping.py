"""``/ping/<token>``: a heartbeat's job checks in (GET, HEAD or POST; ``/start``, ``/fail``, ``/<exit status>``).

No auth: the token in the URL is the credential. The answers are plain text,
as cron jobs and ``curl -fsS`` want them: ``OK``; ``not found`` for any token
that is not a heartbeat's (nothing more is said); 429 with ``Retry-After``
when the token sent too many pings this minute. See :mod:`uptimed.probe.pings`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse

from uptimed.api.context import Context
from uptimed.probe.pings import MESSAGE_BYTES, Outcome

router = APIRouter(prefix="/ping", tags=["heartbeats"])

# No bounds here: a malformed token answers "not found" like any unknown one, not a validation error.
Token = Annotated[str, Path(description="the heartbeat's ping token")]
Suffix = Annotated[str, Path(description="start, fail, or the job's exit status (0-255)")]

_HEADERS = {"Cache-Control": "no-store"}


async def _first_bytes(request: Request) -> bytes:
    """The start of the body, however long the job's output: the rest is never read."""
    kept = b""
    async for chunk in request.stream():
        kept += chunk[: MESSAGE_BYTES - len(kept)]
        if len(kept) >= MESSAGE_BYTES:
            break
    return kept


def _not_found() -> PlainTextResponse:
    return PlainTextResponse("not found", status_code=404, headers=_HEADERS)


async def _ping(request: Request, context: Context, token: str, suffix: str | None) -> PlainTextResponse:
    if context.pings is None:  # an app without Redis (tests of other routes): it knows no heartbeat
        return _not_found()
    body = await _first_bytes(request) if request.method == "POST" else b""
    received = await context.pings.receive(token, suffix, body)
    if received.outcome is Outcome.UNKNOWN:
        return _not_found()
    if received.outcome is Outcome.LIMITED:
        headers = {**_HEADERS, "Retry-After": str(received.retry_after_s or 60)}
        return PlainTextResponse("too many pings", status_code=429, headers=headers)
    return PlainTextResponse("OK", headers=_HEADERS)


async def ping(request: Request, token: Token, context: Context) -> PlainTextResponse:
    return await _ping(request, context, token, None)


async def ping_signal(request: Request, token: Token, suffix: Suffix, context: Context) -> PlainTextResponse:
    return await _ping(request, context, token, suffix)


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "OK: taken", "content": {"text/plain": {}}},
    404: {"description": "no heartbeat has this token"},
    429: {"description": "too many pings from this token this minute (see Retry-After)"},
}

# One route a method, so each has an operation id of its own in the OpenAPI document.
for _method in ("GET", "HEAD", "POST"):
    router.add_api_route(
        "/{token}",
        ping,
        methods=[_method],
        name=f"ping_{_method.lower()}",
        response_class=PlainTextResponse,
        summary="A heartbeat's job succeeded" + (" (the body's first bytes are kept)" if _method == "POST" else ""),
        responses=_ANSWERS,
    )
    router.add_api_route(
        "/{token}/{suffix}",
        ping_signal,
        methods=[_method],
        name=f"ping_signal_{_method.lower()}",
        response_class=PlainTextResponse,
        summary="A heartbeat's job started (start), failed (fail) or exited with a status (0 is success)",
        responses=_ANSWERS,
    )
