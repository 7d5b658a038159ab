"""The HTTP server: uvicorn inside the daemon's task group, serving the app of :mod:`uptimed.app`.

:func:`serve` runs the app (the API and the pages) until cancelled, then
stops accepting, lets requests in flight finish (a few seconds at most) and
returns. uvicorn's own signal handling and lifespan are off: the daemon owns
both. :class:`AccessLog` logs one line a request.

Slow clients cannot hold the server (:func:`guarded_protocol`): uvicorn
keeps a connection that never finishes its request open for ever, and past
``limit_concurrency`` connections it answers every new request 503, so a
thousand half-sent requests from one address took the whole server. Here a
request must arrive whole within ``[api] request_timeout`` (else 408 and the
connection closes), and one client address holds at most ``[api]
max_connections_per_client`` connections (more are answered 503 at once).
This is a small subclass of uvicorn's h11 protocol rather than another server:
neither hypercorn nor granian limits connections per address either, and
uvicorn's behaviour is otherwise what the daemon relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from uptimed.config import ApiSettings

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
    from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger()

GRACEFUL_SHUTDOWN_S = 5  # whole seconds: uvicorn takes an int
TICKS_PER_S = 10  # uvicorn's on_tick(counter) does its once-a-second work when counter % 10 == 0


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
        answered = gone = False

        async def sending(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start" and not gone:  # an answer to nobody is none
                status, answered = message["status"], True
            await send(message)

        async def receiving() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        try:
            await self.app(scope, receiving, sending)
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            if gone and not answered:
                # The client went away before the answer: its own doing, not a failure of ours (nginx's 499).
                log.debug("api.request", method=scope["method"], path=shown_path(scope["path"]), status=499, ms=ms)
            else:
                # A 503 from /readyz is an answer, not a failure: a load balancer polling through an outage is no news.
                level = log.warning if status >= 500 and scope["path"] != "/readyz" else log.debug
                level("api.request", method=scope["method"], path=shown_path(scope["path"]), status=status, ms=ms)


_PING_TOKEN = re.compile(r"^/ping/[^/]+")


def shown_path(path: str) -> str:
    """``path`` as logged: a heartbeat's ping token is a credential, so ``/ping/<token>/fail`` loses it."""
    return _PING_TOKEN.sub("/ping/<token>", path) if path.startswith("/ping/") else path


_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 20\r\nconnection: close\r\n\r\nrequest took too long"
_TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 38\r\n"
    b"connection: close\r\n\r\ntoo many connections from this address"
)
REFUSAL_LOG_EVERY_S = 60.0
"""Refused connections are logged at most this often (with how many since), never one line each."""


class ConnectionGuard:
    """How many connections each client address holds, bounded by ``per_client`` (0: no bound).

    The map holds only addresses with a connection open, so it is as small as the server's connections.
    """

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self.open: dict[str, int] = {}
        self.refused = 0
        self._logged_at = -REFUSAL_LOG_EVERY_S

    def admit(self, address: str) -> bool:
        held = self.open.get(address, 0)
        if self.per_client and held >= self.per_client:
            self.refused += 1
            now = time.monotonic()
            if now - self._logged_at >= REFUSAL_LOG_EVERY_S:
                self._logged_at = now
                log.warning("api.connections_refused", client=address, held=held, refused=self.refused)
                self.refused = 0
            return False
        self.open[address] = held + 1
        return True

    def release(self, address: str) -> None:
        held = self.open.get(address, 0) - 1
        if held > 0:
            self.open[address] = held
        else:
            self.open.pop(address, None)


def guarded_protocol(guard: ConnectionGuard, request_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, with :class:`ConnectionGuard` at accept and a deadline on every request."""
    import h11  # here, not at the top: the daemon imports this module before its probes start
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedProtocol(H11Protocol):
        _address: str | None = None
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            address = self.client[0] if self.client else ""
            if not guard.admit(address):
                transport.write(_TOO_MANY)
                transport.close()
                return
            self._address = address
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._address is not None:
                guard.release(self._address)
                self._address = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                self._disarm()  # the request arrived whole: the app takes as long as it takes

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection has its own deadline

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(request_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                return
            began = self.conn.their_state is h11.SEND_BODY or bool(self.conn.trailing_data[0])
            if began and (self.cycle is None or not self.cycle.response_started):
                self.transport.write(_TIMED_OUT)  # part of a request came: it gets an answer
            self.transport.close()

    return GuardedProtocol


def bind(settings: ApiSettings) -> socket.socket:
    """A listening socket on ``[api] host:port`` (port 0: any free one); OSError when the address is taken."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    return socket.create_server((settings.host, settings.port), family=family, backlog=1024)


def _server(config: uvicorn.Config, exit_asked: asyncio.Event) -> uvicorn.Server:
    """uvicorn's server, leaving signals to the daemon and waking for ``exit_asked`` (with should_exit) or once a second."""
    import uvicorn  # here, not at the top: the daemon imports this module before its probes start

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # The daemon handles SIGTERM / SIGINT and cancels us; uvicorn must not take them over.
            yield

        async def main_loop(self) -> None:
            # uvicorn wakes ten times a second to refresh its Date header (once a second) and to
            # notice should_exit: most of an idle daemon's wake-ups. Once a second, and at once on exit.
            counter = 0
            while not await self.on_tick(counter):
                counter = (counter + TICKS_PER_S) % 864_000
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await exit_asked.wait()

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
        http=guarded_protocol(ConnectionGuard(settings.max_connections_per_client), settings.request_timeout),
    )
    exit_asked = asyncio.Event()
    server = _server(config, exit_asked)
    log.info("api.listening", host=host, port=port)
    # Its own task, so that cancelling us starts uvicorn's graceful shutdown instead of interrupting it.
    task = asyncio.ensure_future(server.serve([sock]))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        exit_asked.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(GRACEFUL_SHUTDOWN_S + 2):
            await task  # past the deadline, cancelling this wait cancels the server too
        raise
    finally:
        if not task.done():
            task.cancel()
        sock.close()
        log.info("api.stopped")
