"""The HTTP API as one FastAPI app, served by uvicorn inside the daemon's task group.

:func:`create_app` builds the app from the daemon's connections;
:func:`serve` runs it until cancelled, then stops accepting, lets requests
in flight finish (a few seconds at most) and returns. uvicorn's own signal
handling and lifespan are off: the daemon owns both.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

import anyio
import asyncpg
import httpx
import structlog
import uvicorn
from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from uptimed import __version__, metrics, web
from uptimed.api import (
    channels,
    errors,
    health,
    incidents,
    integrations,
    monitors,
    notifications,
    tokens,
    users,
)
from uptimed.api import metrics as metrics_route
from uptimed.api.body import BodyGuard
from uptimed.api.bounds import known_query
from uptimed.api.context import ApiContext, Readiness
from uptimed.channels.registry import ChannelRegistry
from uptimed.config import ApiSettings, Settings

log = structlog.get_logger()

GRACEFUL_SHUTDOWN_S = 5.0

DESCRIPTION = """\
The HTTP API of uptimed. Every `/api/v1` route needs `Authorization: Bearer <token>`
(`uptimed user create NAME --email ADDR` prints a first token) and sees only the
caller's own objects: another user's answers 404.

Lists answer a JSON array; when there is more, the `X-Next-Cursor` header holds
the `cursor` of the next page (and `Link` its URL). Errors answer `{"detail": ...}`;
a 422 lists each problem with its `field` (e.g. `config.webhookUrl`).
Integrations keep the original API's camelCase shapes.
"""


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
            level = log.warning if status >= 500 else log.debug
            level("api.request", method=scope["method"], path=scope["path"], status=status, ms=ms)


def create_app(
    *,
    pool: asyncpg.Pool,
    registry: ChannelRegistry,
    settings: Settings,
    http: httpx.AsyncClient,
    readiness: Readiness,
) -> FastAPI:
    """The API over these connections. ``readiness`` answers ``/readyz`` (see :func:`health.service_readiness`)."""
    app = FastAPI(
        title="uptimed",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served by uptimed.web.assets with a vendored Swagger UI: no CDN
        redoc_url=None,
        dependencies=[Depends(known_query)],
    )
    app.state.context = ApiContext(pool=pool, registry=registry, settings=settings, http=http, readiness=readiness)
    errors.install(app)
    for module in (integrations, channels, monitors, notifications, incidents, users, tokens, health, metrics_route):
        app.include_router(module.router)
    web.install(app)
    app.add_middleware(BodyGuard)
    app.add_middleware(AccessLog)
    metrics.track_channels(registry)
    return app


def bind(settings: ApiSettings) -> socket.socket:
    """A listening socket on ``[api] host:port`` (port 0: any free one); OSError when the address is taken."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    return socket.create_server((settings.host, settings.port), family=family, backlog=1024)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The daemon handles SIGTERM / SIGINT and cancels us; uvicorn must not take them over.
        yield


async def serve(app: FastAPI, settings: ApiSettings, *, sock: socket.socket | None = None) -> None:
    """Serve ``app`` on ``sock`` (bound from ``settings`` when not given) until cancelled."""
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
    server = _Server(config)
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
