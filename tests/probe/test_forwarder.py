"""The forwarder against the real Redis and Kafka: in order, trimmed once acknowledged, bounded while the bus is away."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support import EventReader, eventually
from uptimed.metrics import REGISTRY
from uptimed.probe.forwarder import Forwarder
from uptimed.probe.queue import results_stream

pytestmark = pytest.mark.kafka


@pytest.fixture
async def producer(services: dict[str, str]) -> AsyncIterator[AIOKafkaProducer]:
    # A short request timeout: a topic that does not exist (yet) is the bus being away, quickly.
    producer = AIOKafkaProducer(
        bootstrap_servers=services["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"], enable_idempotence=True, request_timeout_ms=2000
    )
    await producer.start()
    yield producer
    await producer.stop()


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 3, 1)])
    finally:
        await admin.close()


async def fill(redis: aioredis.Redis, stream: str, count: int, *, start: int = 0) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(start, start + count):
            pipe.xadd(stream, {"k": str(i % 7), "v": json.dumps({"monitor_id": i % 7, "n": i})})
        await pipe.execute()


def buffered() -> float | None:
    return REGISTRY.get_sample_value("uptimed_results_buffered", {"region": "eu"})


def forwarder(redis: aioredis.Redis, producer: AIOKafkaProducer, topic: str, prefix: str, **options: int) -> Forwarder:
    return Forwarder(
        redis=redis,
        producer=producer,
        topic=topic,
        prefix=prefix,
        region="eu",
        token=uuid.uuid4().hex,
        buffer_max=options.get("buffer_max", 1_000_000),
    )


async def test_results_reach_kafka_in_order_and_leave_redis_once_acknowledged(
    services: dict[str, str], redis: aioredis.Redis, key_prefix: str, producer: AIOKafkaProducer
) -> None:
    bootstrap = services["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"]
    topic = f"{key_prefix.rstrip(':')}.checks"
    await create_topic(bootstrap, topic)
    stream = results_stream(key_prefix, "eu")
    await fill(redis, stream, 5000)
    reader = await EventReader(bootstrap, topic).start()
    try:
        forward = forwarder(redis, producer, topic, key_prefix)
        async with anyio.create_task_group() as tg:
            tg.start_soon(forward.run)
            await reader.wait_records(5000)
            await fill(redis, stream, 10, start=5000)  # more while it runs
            await reader.wait_records(5010)

            async def drained() -> bool:
                return forward.forwarded == 5010 and await redis.xlen(stream) == 0

            await eventually(drained)
            tg.cancel_scope.cancel()
        per_monitor: dict[int, list[int]] = {}
        for event in reader.events:
            per_monitor.setdefault(event["monitor_id"], []).append(event["n"])
        assert sorted(n for ns in per_monitor.values() for n in ns) == list(range(5010))
        assert all(ns == sorted(ns) for ns in per_monitor.values())  # each monitor's results in order
        assert {r.key for r in reader.records} == {str(i).encode() for i in range(7)}
        assert await redis.get(f"{stream}:forwarded")  # the cursor, for the next leader
    finally:
        await reader.stop()


async def test_while_the_bus_is_away_results_wait_bounded_then_go_on_in_order(
    services: dict[str, str], redis: aioredis.Redis, key_prefix: str, producer: AIOKafkaProducer, capsys
) -> None:
    bootstrap = services["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"]
    topic = f"{key_prefix.rstrip(':')}.later"  # does not exist yet: nothing can be published
    stream = results_stream(key_prefix, "eu")
    await fill(redis, stream, 150)
    forward = forwarder(redis, producer, topic, key_prefix, buffer_max=100)
    reader: EventReader | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(forward.run)

            async def bounded() -> bool:
                return forward.dropped > 0

            await eventually(bounded, timeout=30)
            assert await redis.xlen(stream) == 100 and forward.dropped == 50  # the oldest went
            assert buffered() == 100  # what /metrics shows while the bus is away
            await fill(redis, stream, 20, start=150)  # checking goes on meanwhile
            await create_topic(bootstrap, topic)  # the bus is back
            reader = await EventReader(bootstrap, topic).start()
            assert reader is not None

            async def delivered() -> bool:
                return await redis.xlen(stream) == 0 and any(e["n"] == 169 for e in reader.events)

            await eventually(delivered, timeout=60)

            async def emptied() -> bool:
                return buffered() == 0  # what /metrics shows once it caught up

            await eventually(emptied)
            tg.cancel_scope.cancel()
        # The newest 100 to 120 (more may have been dropped before the topic came), none twice,
        # each monitor's in the order they were checked.
        numbers = [event["n"] for event in reader.events]
        assert len(numbers) == len(set(numbers)) and max(numbers) == 169 and 100 <= len(numbers) <= 120
        assert sorted(numbers) == list(range(170 - len(numbers), 170))
        for monitor_id in range(7):
            mine = [event["n"] for event in reader.events if event["monitor_id"] == monitor_id]
            assert mine == sorted(mine)
    finally:
        if reader:
            await reader.stop()
    out = capsys.readouterr().out
    assert "forwarder.bus_unavailable" in out and "results.dropped" in out and "forwarder.bus_back" in out
    assert out.count("forwarder.bus_unavailable") == 1


async def test_only_one_process_forwards_a_region(
    services: dict[str, str], redis: aioredis.Redis, key_prefix: str, producer: AIOKafkaProducer
) -> None:
    topic = f"{key_prefix.rstrip(':')}.checks"
    await create_topic(services["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"], topic)
    first, second = forwarder(redis, producer, topic, key_prefix), forwarder(redis, producer, topic, key_prefix)
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.run)

        async def leading() -> bool:
            return first.leadership.is_leader

        await eventually(leading)
        tg.start_soon(second.run)
        await fill(redis, results_stream(key_prefix, "eu"), 50)

        async def forwarded() -> bool:
            return first.forwarded == 50

        await eventually(forwarded)
        assert not second.leadership.is_leader and second.forwarded == 0
        tg.cancel_scope.cancel()
