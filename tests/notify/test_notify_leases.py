"""A delivery waiting for a slot keeps its lease: sent once, by the process that claimed it, however long it waits.

The dispatcher claims due rows for ``delivery_timeout + LEASE_MARGIN_S`` and
renews what it holds every second. Here eight alerts go to one slow webhook
through one slot, so the last ones wait about twice a lease before their
turn. Were the lease not renewed, they would come due again while held and
another process would claim them (this process's attempt, finding the row
gone, would then drop it).
"""

from __future__ import annotations

import uuid

import anyio

from tests.support import Stack, WebhookReceiver, eventually
from uptimed.channels.http import delivery_client
from uptimed.channels.registry import default_registry
from uptimed.channels.webhook import EVENT_ID_HEADER
from uptimed.config import DatabaseSettings, NotifySettings, SmtpSettings
from uptimed.event import EventType, MonitorEvent
from uptimed.notify.dispatcher import LEASE_MARGIN_S, Dispatcher
from uptimed.rules.targets import TRUSTED
from uptimed.store import notification_log
from uptimed.store.database import connect
from uptimed.store.notification_log import Intent

ALERTS = 8
ANSWER_S = 0.8
TIMEOUT_S = 1.0


async def test_alerts_waiting_longer_than_a_lease_for_their_turn_are_sent_once(stack: Stack) -> None:
    assert ALERTS * ANSWER_S > 1.5 * (TIMEOUT_S + LEASE_MARGIN_S)  # the last ones outwait their first lease
    receiver = await WebhookReceiver().start()
    receiver.delay = lambda: ANSWER_S
    pool = await connect(DatabaseSettings(dsn=stack.dsn))
    settings = NotifySettings(delivery_timeout=TIMEOUT_S, max_attempts=1, per_channel_concurrency=1)
    http = delivery_client(timeout=TIMEOUT_S, policy=TRUSTED, per_destination=settings.connections_per_destination)
    try:
        async with pool.acquire() as db:
            user = await db.fetchval(
                "INSERT INTO users (username, email) VALUES ('ann', 'ann@example.com') RETURNING id"
            )
            webhook = await db.fetchval(
                "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', $2) RETURNING id",
                user,
                {"webhookUrl": receiver.url("/ann"), "headers": {}},
            )
            events = [
                MonitorEvent(
                    type=EventType.DOWN, websiteId=n, userId=user, url="https://shop.example/", name=f"shop {n}",
                    eventId=uuid.uuid4(),
                )
                for n in range(ALERTS)
            ]  # fmt: skip
            await notification_log.add_intents(db, [Intent(event, webhook) for event in events])
        first = Dispatcher(pool=pool, registry=default_registry(), settings=settings, smtp=SmtpSettings(), http=http)
        second = Dispatcher(pool=pool, registry=default_registry(), settings=settings, smtp=SmtpSettings(), http=http)
        async with anyio.create_task_group() as tg:
            tg.start_soon(first.run)

            async def all_held() -> bool:
                return first.in_flight == ALERTS

            await eventually(all_held, timeout=10)
            tg.start_soon(second.run)  # another process, idle, looking for rows that came due

            async def all_sent() -> bool:
                sent = await pool.fetchval("SELECT count(*) FROM notification_log WHERE status = 'SENT'")
                return sent == ALERTS

            await eventually(all_sent, timeout=ALERTS * ANSWER_S + 10)
            tg.cancel_scope.cancel()
        delivered = [request.headers[EVENT_ID_HEADER] for request in receiver.to("/ann")]
        assert sorted(delivered) == sorted(str(event.eventId) for event in events)  # each once
        attempts = await pool.fetch("SELECT attempts, attempt_log FROM notification_log")
        assert {row["attempts"] for row in attempts} == {1}
        assert {entry["owner"] for row in attempts for entry in row["attempt_log"]} == {first.owner}
    finally:
        await http.aclose()
        await pool.close()
        await receiver.stop()
