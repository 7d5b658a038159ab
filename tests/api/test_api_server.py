"""The API served by real uvicorn on 127.0.0.1: answers, then stops gracefully when cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from aiohttp import web

from tests.api.conftest import Api, Person
from tests.support import eventually
from uptimed.api.server import bind, serve
from uptimed.config import ApiSettings


class HeldWebhook:
    """A webhook receiver that holds each request until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.entered.set()
        await self.release.wait()
        return web.Response(text="ok")

    async def start(self) -> HeldWebhook:
        app = web.Application()
        app.router.add_post("/held", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/held"
        return self


@pytest.fixture
async def held() -> AsyncIterator[HeldWebhook]:
    server = await HeldWebhook().start()
    yield server
    server.release.set()
    assert server.runner is not None
    await server.runner.cleanup()


async def test_serves_on_a_real_socket_and_finishes_requests_in_flight_when_cancelled(
    api: Api, alice: Person, held: HeldWebhook
) -> None:
    sock = bind(ApiSettings(host="127.0.0.1", port=0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    integration = (
        await alice.client.post("/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": held.url}})
    ).json()

    serving = anyio.CancelScope()

    async def run() -> None:
        with serving:
            await serve(api.app, ApiSettings(), sock=sock)

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {alice.token}"}) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/api/v1/me")).json()["id"] == alice.id

            in_flight = asyncio.ensure_future(client.post(f"/api/v1/integrations/{integration['id']}/test"))
            await held.entered.wait()
            serving.cancel()  # as the supervisor does on SIGTERM

            async def stopped_listening() -> bool:
                return sock.fileno() == -1  # uvicorn's shutdown closes it before it waits for requests

            await eventually(stopped_listening, timeout=5, interval=0.01)
            held.release.set()
        # serve() returned: the request that was in flight got its answer, new connections are refused.
        response = await in_flight
        assert response.status_code == 200
        assert response.json()["status"] == "sent"
        with pytest.raises(httpx.ConnectError):
            await client.get("/healthz")
    assert sock.fileno() == -1


async def test_an_address_in_use_is_an_oserror_the_supervisor_can_retry() -> None:
    first = bind(ApiSettings(host="127.0.0.1", port=0))
    try:
        with pytest.raises(OSError):
            bind(ApiSettings(host="127.0.0.1", port=first.getsockname()[1]))
    finally:
        first.close()
