"""SIGTERM lets the checks and deliveries in flight finish, records them, then exits 0."""

from __future__ import annotations

import asyncio
import json
import signal

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaProducer

from tests.notify.test_notify_delivery import down_event, owner_with_webhooks
from tests.support import EventReader, Stack, WebhookReceiver
from tests.test_monitoring import monitor


class SlowServer:
    """Holds every request until released."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.port = 0

    async def start(self) -> web.AppRunner:
        async def handle(request: web.Request) -> web.Response:
            self.arrived.set()
            await self.release.wait()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner


async def test_a_check_in_flight_finishes_and_is_published(topics: Stack, start_daemon) -> None:
    stack = topics
    slow = SlowServer()
    runner = await slow.start()
    checks = await EventReader(stack.bootstrap, f"{stack.prefix}.checks").start()
    try:
        daemon = await start_daemon(stack.toml(monitor(f"http://127.0.0.1:{slow.port}/", interval=5, timeout=4)))
        await asyncio.wait_for(slow.arrived.wait(), 15)
        daemon.process.send_signal(signal.SIGTERM)
        await daemon.wait_for("daemon.stopping")
        slow.release.set()
        assert await asyncio.wait_for(daemon.process.wait(), 30) == 0
        await daemon._reader
        names = [line.get("event") for line in daemon.lines]
        assert "probe.checked" in names[names.index("daemon.stopping") :], "the check in flight was abandoned"
        [record] = await checks.wait_records(1)
        assert json.loads(record.value)["status"] == "up"
        client = aioredis.from_url(stack.redis_url)
        pending = await client.xpending(f"{stack.prefix}:probe:default", "probers")
        await client.aclose()
        assert pending["pending"] == 0, "its job was acknowledged"
    finally:
        slow.release.set()
        await checks.stop()
        await runner.cleanup()


async def test_a_delivery_in_flight_finishes_and_is_recorded_sent(topics: Stack, start_daemon) -> None:
    stack = topics
    slow = SlowServer()
    runner = await slow.start()
    conn = await asyncpg.connect(stack.dsn)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        receiver = WebhookReceiver()
        receiver.port = slow.port
        user, monitor_id, _ = await owner_with_webhooks(conn, receiver, "/hook")
        daemon = await start_daemon(stack.toml())
        event = down_event(user, monitor_id)
        await producer.send_and_wait(f"{stack.prefix}.website.events", event.model_dump_json().encode(), key=b"1")
        await asyncio.wait_for(slow.arrived.wait(), 15)
        daemon.process.send_signal(signal.SIGTERM)
        await daemon.wait_for("daemon.stopping")
        slow.release.set()
        assert await asyncio.wait_for(daemon.process.wait(), 30) == 0
        row = await conn.fetchrow("SELECT status, attempts FROM notification_log WHERE event_id = $1", event.eventId)
        assert (row["status"], row["attempts"]) == ("SENT", 1)
    finally:
        slow.release.set()
        await producer.stop()
        await conn.close()
        await runner.cleanup()
