"""The dead-letter topic: where a message that cannot be processed goes, so its partition keeps flowing."""

from __future__ import annotations

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

log = structlog.get_logger()


async def dead_letter(producer: AIOKafkaProducer, topic: str, record: ConsumerRecord, reason: str) -> None:
    """Copy ``record`` to ``topic`` with the reason and its origin in headers; wait until stored."""
    headers = [
        ("reason", reason[:1000].encode()),
        ("source-topic", record.topic.encode()),
        ("source-partition", str(record.partition).encode()),
        ("source-offset", str(record.offset).encode()),
    ]
    future = await producer.send(topic, record.value, key=record.key, headers=headers)
    await future
    log.warning(
        "message.dead_lettered", topic=record.topic, partition=record.partition, offset=record.offset, reason=reason[:200]
    )
