"""The HTTP server: uvicorn inside the daemon's task group, serving the app of :mod:`uptimed.app`.

:func:`serve` runs the app (the API and the pages) until cancelled, then
stops accepting, lets requests in flight finish (a few seconds at most) and
returns. uvicorn's own signal handling and lifespan are off: the daemon owns
both. :class:`AccessLog` logs one line a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import anyio
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from uptimed.config import ApiSettings

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

log = structlog.get_logger()

GRACEFUL_SHUTDOWN_S = 5  # whole seconds: uvicorn takes an int


class AccessLog:
    """ASGI middleware: one structured line per request (method, path, status, ms); never a header or body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            # A 503 from /readyz is an answer, not a failure: a load balancer polling through an outage is no news.
            level = log.warning if status >= 500 and scope["path"] != "/readyz" else log.debug
            level("api.request", method=scope["method"], path=shown_path(scope["path"]), status=status, ms=ms)


_PING_TOKEN = re.compile(r"^/ping/[^/]+")


def shown_path(path: str) -> str:
    """``path`` as logged: a heartbeat's ping token is a credential, so ``/ping/<token>/fail`` loses it."""
    return _PING_TOKEN.sub("/ping/<token>", path) if path.startswith("/ping/") else path


def bind(settings: ApiSettings) -> socket.socket:
    """A listening socket on ``[api] host:port`` (port 0: any free one); OSError when the address is taken."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    return socket.create_server((settings.host, settings.port), family=family, backlog=1024)


def _server(config: uvicorn.Config) -> uvicorn.Server:
    import uvicorn  # here, not at the top: the daemon imports this module before its probes start

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # The daemon handles SIGTERM / SIGINT and cancels us; uvicorn must not take them over.
            yield

    return Server(config)


async def serve(app: FastAPI, settings: ApiSettings, *, sock: socket.socket | None = None) -> None:
    """Serve ``app`` on ``sock`` (bound from ``settings`` when not given) until cancelled."""
    import uvicorn

    sock = sock or bind(settings)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        limit_concurrency=1000,
        h11_max_incomplete_event_size=16 * 1024,
    )
    server = _server(config)
    log.info("api.listening", host=host, port=port)
    # Its own task, so that cancelling us starts uvicorn's graceful shutdown instead of interrupting it.
    task = asyncio.ensure_future(server.serve([sock]))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        with anyio.CancelScope(shield=True), anyio.move_on_after(GRACEFUL_SHUTDOWN_S + 2):
            await task  # past the deadline, cancelling this wait cancels the server too
        raise
    finally:
        if not task.done():
            task.cancel()
        sock.close()
        log.info("api.stopped")
