"""The notifier against real Kafka and PostgreSQL, with `uptimed run` as a real process.

Events are published straight onto ``website.events``; local webhook
receivers answer as each test scripts them.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from tests.support import EventReader, Stack, WebhookReceiver, eventually
from uptimed.event import EventType, MonitorEvent

pytestmark = pytest.mark.kafka

FAST_RETRIES = "[notify]\nbackoff_initial = 0.3\nmax_attempts = 4\ndelivery_timeout = 5\n"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


@pytest.fixture
async def producer(topics: Stack) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(bootstrap_servers=topics.bootstrap)
    await client.start()
    yield client
    await client.stop()


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(stack.dsn)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    yield conn
    await conn.close()


async def owner_with_webhooks(
    db: asyncpg.Connection, receiver: WebhookReceiver, *paths: str
) -> tuple[int, int, dict[str, int]]:
    """A user, one of their monitors, and a webhook integration per path."""
    user = await db.fetchval("INSERT INTO users (username, email) VALUES ('alice', 'alice@example.com') RETURNING id")
    monitor = await db.fetchval(
        "INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s) VALUES ($1, 'shop', 'https://shop.example/', 60, 10) RETURNING id",
        user,
    )
    ids = {}
    for path in paths:
        ids[path] = await db.fetchval(
            "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', $2) RETURNING id",
            user,
            {"webhookUrl": receiver.url(path), "headers": {}},
        )
    return user, monitor, ids


def down_event(user: int, monitor: int) -> MonitorEvent:
    return MonitorEvent(
        type=EventType.DOWN,
        websiteId=monitor,
        userId=user,
        url="https://shop.example/",
        regionId="default",
        reason="status: HTTP 500",
        regions={"default": "down"},
        name="shop",
        eventId=uuid.uuid4(),
    )


async def publish(producer: AIOKafkaProducer, stack: Stack, value: bytes, key: bytes = b"1") -> None:
    await producer.send_and_wait(f"{stack.prefix}.website.events", value, key=key)


async def log_rows(db: asyncpg.Connection, event: MonitorEvent) -> dict[int, asyncpg.Record]:
    rows = await db.fetch("SELECT * FROM notification_log WHERE event_id = $1", event.eventId)
    return {row["integration_id"]: row for row in rows}


async def test_retries_rate_limits_and_permanent_failures_do_not_delay_a_healthy_destination(
    stack: Stack, db, receiver: WebhookReceiver, producer, start_daemon
) -> None:
    user, monitor, ids = await owner_with_webhooks(db, receiver, "/flaky", "/limited", "/broken", "/healthy")
    receiver.script("/flaky", 500, 500, 200)
    receiver.script("/limited", (429, {"Retry-After": "2"}), 200)
    receiver.script("/broken", 400)
    await start_daemon(stack.toml(FAST_RETRIES))

    event = down_event(user, monitor)
    await publish(producer, stack, event.model_dump_json().encode())
    [healthy] = await receiver.wait_for("/healthy")
    [first, _] = await receiver.wait_for("/limited", 2)
    assert receiver.to("/limited")[1].at - first.at >= 2.0, "retried before Retry-After"
    assert healthy.at - first.at < 1.0, "the healthy destination waited for the others"
    await receiver.wait_for("/flaky", 3)

    async def settled() -> dict[int, asyncpg.Record] | None:
        rows = await log_rows(db, event)
        return rows if all(r["status"] in ("SENT", "FAILED") for r in rows.values()) and len(rows) == 4 else None

    rows = await eventually(settled)
    assert (rows[ids["/flaky"]]["status"], rows[ids["/flaky"]]["attempts"]) == ("SENT", 3)
    assert (rows[ids["/limited"]]["status"], rows[ids["/limited"]]["attempts"]) == ("SENT", 2)
    assert (rows[ids["/healthy"]]["status"], rows[ids["/healthy"]]["attempts"]) == ("SENT", 1)
    broken = rows[ids["/broken"]]
    assert (broken["status"], broken["attempts"]) == ("FAILED", 1) and "400" in broken["error_message"]
    assert len(receiver.to("/broken")) == 1


async def test_delivery_gives_up_after_the_last_attempt(
    stack: Stack, db, receiver: WebhookReceiver, producer, start_daemon
) -> None:
    user, monitor, ids = await owner_with_webhooks(db, receiver, "/down")
    receiver.script("/down", 503, 503, 503, 503, 503)
    await start_daemon(stack.toml(FAST_RETRIES))
    event = down_event(user, monitor)
    await publish(producer, stack, event.model_dump_json().encode())
    await receiver.wait_for("/down", 4)

    async def failed() -> asyncpg.Record | None:
        row = (await log_rows(db, event)).get(ids["/down"])
        return row if row and row["status"] == "FAILED" else None

    row = await eventually(failed)
    assert row["attempts"] == 4 and "503" in row["error_message"]


async def test_sigkill_after_intents_then_restart_delivers_each_exactly_once(
    stack: Stack, db, receiver: WebhookReceiver, producer, start_daemon
) -> None:
    user, monitor, _ = await owner_with_webhooks(db, receiver, "/a", "/b")
    frozen = await start_daemon(stack.toml(FAST_RETRIES), env={"UPTIMED_FAILPOINTS": "notify.before_delivery"})
    await frozen.wait_for("failpoint.hit")

    event = down_event(user, monitor)
    await publish(producer, stack, event.model_dump_json().encode())
    await frozen.wait_for("notifier.recorded", added=2)
    frozen.process.send_signal(signal.SIGKILL)
    await frozen.process.wait()
    assert receiver.requests == []
    assert {r["status"] for r in (await log_rows(db, event)).values()} == {"PENDING"}

    restarted = await start_daemon(stack.toml(FAST_RETRIES))
    await receiver.wait_for("/a")
    await receiver.wait_for("/b")

    # The same event published again sends nothing more.
    await publish(producer, stack, event.model_dump_json().encode())
    await restarted.wait_for("notifier.recorded", added=0)
    await eventually(lambda: _all_sent(db, event))
    assert len(receiver.to("/a")) == 1 and len(receiver.to("/b")) == 1
    assert receiver.to("/a")[0].headers["X-Uptimed-Event-Id"] == str(event.eventId)


async def _all_sent(db: asyncpg.Connection, event: MonitorEvent) -> bool:
    rows = await log_rows(db, event)
    return len(rows) == 2 and all(r["status"] == "SENT" for r in rows.values())


async def test_poison_message_is_dead_lettered_and_the_next_event_delivered(
    stack: Stack, db, receiver: WebhookReceiver, producer, start_daemon
) -> None:
    user, monitor, _ = await owner_with_webhooks(db, receiver, "/hook")
    dead = await EventReader(stack.bootstrap, f"{stack.prefix}.dead-letters").start()
    try:
        await start_daemon(stack.toml(FAST_RETRIES))
        await publish(producer, stack, b"{not json", key=str(monitor).encode())
        await publish(producer, stack, b'{"type": "website.down"}', key=str(monitor).encode())
        event = down_event(user, monitor)
        await publish(producer, stack, event.model_dump_json().encode(), key=str(monitor).encode())

        [request] = await receiver.wait_for("/hook")
        assert request.json()["data"]["eventId"] == str(event.eventId)
        await dead.wait_records(2)
        reasons = [dict(r.headers)["reason"].decode() for r in dead.records]
        assert dead.records[0].value == b"{not json"
        assert all(reason.startswith("invalid event") for reason in reasons)
        assert "websiteId" in reasons[1]
    finally:
        await dead.stop()


async def test_an_event_type_this_version_does_not_know_is_skipped_and_an_escalation_reaches_only_its_step(
    stack: Stack, db, receiver: WebhookReceiver, producer, start_daemon
) -> None:
    user, monitor, ids = await owner_with_webhooks(db, receiver, "/first", "/second", "/third")
    dead = await EventReader(stack.bootstrap, f"{stack.prefix}.dead-letters").start()
    try:
        daemon = await start_daemon(stack.toml(FAST_RETRIES))
        key = str(monitor).encode()
        # A type a newer uptimed might add: not this version's business, and no poison either.
        future = {**json.loads(down_event(user, monitor).model_dump_json()), "type": "incident.reassigned"}
        await publish(producer, stack, json.dumps(future).encode(), key=key)
        step = MonitorEvent(
            **{
                **down_event(user, monitor).model_dump(),
                "type": EventType.ESCALATED,
                "eventId": uuid.uuid4(),
                "integrationIds": [ids["/second"], ids["/third"], 10**9],  # one of them not the owner's
                "escalation": {"step": 2, "steps": 2, "afterSeconds": 300},
            }
        )
        await publish(producer, stack, step.model_dump_json().encode(), key=key)
        nobody = MonitorEvent(**{**step.model_dump(), "eventId": uuid.uuid4(), "integrationIds": []})
        await publish(producer, stack, nobody.model_dump_json().encode(), key=key)
        closing = down_event(user, monitor)  # no integrationIds: every integration the monitor routes to
        await publish(producer, stack, closing.model_dump_json().encode(), key=key)

        await receiver.wait_for("/first", 1)
        await receiver.wait_for("/second", 2)
        await receiver.wait_for("/third", 2)
        assert [r.json()["event"] for r in receiver.to("/first")] == ["website.down"]
        assert [r.json()["event"] for r in receiver.to("/second")] == ["incident.escalated", "website.down"]
        assert set(await log_rows(db, step)) == {ids["/second"], ids["/third"]}
        assert await log_rows(db, nobody) == {}
        assert dead.records == [] and not daemon.events("delivery.failed")
    finally:
        await dead.stop()
