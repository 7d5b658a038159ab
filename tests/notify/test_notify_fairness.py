"""One user's many stuck destinations do not hold back another user's deliveries.

Mallory has 30 webhooks, each to a server of its own that accepts and never
answers (so the cap per destination does not help); bob has one to a
receiver that answers. The webhook channel has 20 slots here: without
``[notify] deliveries_per_user`` mallory's alerts would take them all for a
whole delivery timeout, and bob's would wait for it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest

from tests.support import Stack, WebhookReceiver, eventually
from uptimed.channels.http import delivery_client
from uptimed.channels.registry import default_registry
from uptimed.config import DatabaseSettings, NotifySettings, SmtpSettings
from uptimed.event import EventType, MonitorEvent
from uptimed.notify.dispatcher import Dispatcher
from uptimed.rules.targets import TRUSTED
from uptimed.store import Connection, notification_log
from uptimed.store.database import connect
from uptimed.store.notification_log import Intent

STUCK = 30
PER_USER = 5


class BlackHoles:
    """Servers that accept connections and never answer; how many connections all of them hold at most."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.open = self.most = 0

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            await reader.read()  # until the client gives up
        finally:
            self.open -= 1
            writer.close()

    async def start(self, count: int) -> list[int]:
        self.servers = [await asyncio.start_server(self._hold, "127.0.0.1", 0) for _ in range(count)]
        return [server.sockets[0].getsockname()[1] for server in self.servers]

    def close(self) -> None:
        for server in self.servers:
            server.close()


@pytest.fixture
async def holes() -> AsyncIterator[BlackHoles]:
    found = BlackHoles()
    yield found
    found.close()


async def user_with_webhooks(db: Connection, name: str, urls: list[str]) -> tuple[int, list[int]]:
    user = await db.fetchval("INSERT INTO users (username, email) VALUES ($1, $1 || '@example.com') RETURNING id", name)
    ids = [
        await db.fetchval(
            "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', $2) RETURNING id",
            user,
            {"webhookUrl": url, "headers": {}},
        )
        for url in urls
    ]
    return user, ids


def down(user: int) -> MonitorEvent:
    return MonitorEvent(
        type=EventType.DOWN, websiteId=1, userId=user, url="https://shop.example/", name="shop", eventId=uuid.uuid4()
    )


async def test_one_users_stuck_destinations_do_not_hold_back_another_users_delivery(
    stack: Stack, holes: BlackHoles
) -> None:
    receiver = await WebhookReceiver().start()
    pool = await connect(DatabaseSettings(dsn=stack.dsn))
    settings = NotifySettings(
        delivery_timeout=5, max_attempts=1, per_channel_concurrency=20, deliveries_per_user=PER_USER
    )
    http = delivery_client(timeout=5, policy=TRUSTED, per_destination=settings.connections_per_destination)
    try:
        async with pool.acquire() as db:
            ports = await holes.start(STUCK)
            mallory, stuck = await user_with_webhooks(db, "mallory", [f"http://127.0.0.1:{p}/x" for p in ports])
            bob, [fine] = await user_with_webhooks(db, "bob", [receiver.url("/bob")])
            await notification_log.add_intents(db, [Intent(down(mallory), i) for i in stuck])
        dispatcher = Dispatcher(
            pool=pool, registry=default_registry(), settings=settings, smtp=SmtpSettings(), http=http
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(dispatcher.run)

            async def mallorys_in_flight() -> bool:
                return holes.open == PER_USER

            await eventually(mallorys_in_flight, timeout=10)
            async with pool.acquire() as db:
                started = time.perf_counter()
                await notification_log.add_intents(db, [Intent(down(bob), fine)])
            dispatcher.wake()
            await receiver.wait_for("/bob", timeout=10)
            waited = time.perf_counter() - started
            assert holes.open == PER_USER  # mallory's first five still hang
            tg.cancel_scope.cancel()
        # Well within the 5 s mallory's deliveries hang: bob's did not wait for a slot they held.
        assert waited < 2.0, waited
        assert holes.most == PER_USER
        print(f"\nbob's alert beside {STUCK} of mallory's stuck deliveries: {waited * 1000:.0f} ms")
    finally:
        await http.aclose()
        await pool.close()
        await receiver.stop()
