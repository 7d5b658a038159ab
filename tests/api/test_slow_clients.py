"""Slow clients cannot take the server: a thousand half-open requests from one address, others served normally.

The server is the daemon's (uvicorn with :func:`uptimed.api.server.guarded_protocol`)
on a real socket. The attacker connects from 127.0.0.1; the other client from
127.0.0.2, another address of this machine.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.api.conftest import Api, make_person, monitor_body
from uptimed.api.server import bind, serve
from uptimed.config import ApiSettings

Serve = Callable[[ApiSettings], Awaitable[int]]


@pytest.fixture
async def served(api: Api) -> AsyncIterator[Serve]:
    """``await served(settings)``: the app on a real socket with these ``[api]`` settings; its port."""
    servers: list[asyncio.Task[None]] = []

    async def start(settings: ApiSettings) -> int:
        sock = bind(ApiSettings(host="127.0.0.1", port=0))
        servers.append(asyncio.create_task(serve(api.app, settings, sock=sock)))
        return int(sock.getsockname()[1])

    yield start
    for server in servers:
        server.cancel()
    await asyncio.gather(*servers, return_exceptions=True)


async def half_open(port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    return reader, writer


async def test_1000_half_open_requests_from_one_address_leave_other_clients_served(api: Api, served: Serve) -> None:
    alice = await make_person(api, "alice")
    monitor = (await alice.client.post("/api/v1/monitors", json=monitor_body())).json()
    await api.pool.execute(
        "INSERT INTO status_pages (owner_id, slug, title, published, monitor_ids) VALUES ($1, 'shop', 'Shop', true, $2)",
        alice.id,
        [monitor["id"]],
    )
    port = await served(ApiSettings(request_timeout=60))
    attack: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _batch in range(10):  # in batches, as a client with a normal listen backlog would get them accepted
            attack += await asyncio.gather(
                *(
                    half_open(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + str(n).encode())
                    for n in range(100)
                )
            )
        answers = await asyncio.gather(
            *(asyncio.wait_for(reader.read(200), 0.5) for reader, _ in attack), return_exceptions=True
        )
        held = sum(1 for a in answers if isinstance(a, TimeoutError))
        # The others were answered 503 and closed at once (a close with their request unread may reach them as a reset).
        answered = sum(1 for a in answers if isinstance(a, bytes) and a.startswith(b"HTTP/1.1 503"))
        reset = sum(1 for a in answers if isinstance(a, ConnectionResetError))
        assert (held, answered + reset) == (32, 968), (held, answered, reset)

        other = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        )
        latencies: dict[str, list[float]] = {"/healthz": [], "/status/shop": []}
        async with other:
            for _ in range(20):
                for path, found in latencies.items():
                    started = time.perf_counter()
                    response = await other.get(path)
                    found.append(time.perf_counter() - started)
                    assert response.status_code == 200, (path, response.status_code)
            status_page = await other.get("/status/shop")
        assert "Shop" in status_page.text and monitor["name"] in status_page.text
        worst = {path: max(found) for path, found in latencies.items()}
        median = {path: statistics.median(found) for path, found in latencies.items()}
        assert max(worst.values()) < 1.0 and max(median.values()) < 0.2, (worst, median)
        print(f"\nbeside 1,000 half-open requests: median {median}, worst {worst} (s)")
    finally:
        for _, writer in attack:
            writer.close()


async def test_a_request_that_does_not_arrive_in_time_is_answered_408_and_closed(served: Serve) -> None:
    port = await served(ApiSettings(request_timeout=1, max_connections_per_client=0))
    started = time.monotonic()
    # The writers are kept: one that is collected closes its connection.
    headers_only, kept1 = await half_open(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    slow_body, kept2 = await half_open(
        port, b"POST /api/v1/monitors HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    )
    silent, kept3 = await half_open(port, b"")
    assert (await asyncio.wait_for(headers_only.read(), 5)).startswith(b"HTTP/1.1 408")
    assert (await asyncio.wait_for(slow_body.read(), 5)).startswith(b"HTTP/1.1 408")
    assert await asyncio.wait_for(silent.read(), 5) == b""  # said nothing, gets nothing: closed
    assert 1.0 <= time.monotonic() - started < 3.0
    assert not any(w.is_closing() for w in (kept1, kept2, kept3))  # it was the server that closed them
    # A keep-alive connection: each request has its own deadline, so a quick client is never cut off.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(3):
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.sleep(0.6)
