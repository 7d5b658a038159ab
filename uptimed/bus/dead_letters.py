"""The dead-letter topic: where a message that cannot be processed goes, so its partition keeps flowing.

Every dead letter, from any topic, has the same headers: ``reason``, one line
that names the field and what is wrong with it (never the message's content,
which may be large or secret, nor a link to a library's documentation), and
``source-topic``, ``source-partition``, ``source-offset`` to find the original.
"""

from __future__ import annotations

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from uptimed.rules.errors import plain

log = structlog.get_logger()

REASON_LIMIT = 500


def invalid(what: str, exc: ValidationError) -> str:
    """The reason for a message that is not a valid ``what``: ``invalid check result: status: must be 'up' or 'down'``.

    pydantic's own text repeats the input and adds a URL per error; only the
    location and the message of each error are kept.
    """
    problems = "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'body'}: {plain(error)}" for error in exc.errors(include_url=False)
    )
    return f"invalid {what}: {problems}"


def one_line(reason: str) -> str:
    """``reason`` as one line of at most :data:`REASON_LIMIT` characters."""
    line = " ".join(reason.split())
    return line if len(line) <= REASON_LIMIT else line[: REASON_LIMIT - 1] + "…"


async def dead_letter(producer: AIOKafkaProducer, topic: str, record: ConsumerRecord, reason: str) -> None:
    """Copy ``record`` to ``topic`` with the reason and its origin in headers; wait until stored."""
    reason = one_line(reason)
    headers = [
        ("reason", reason.encode()),
        ("source-topic", record.topic.encode()),
        ("source-partition", str(record.partition).encode()),
        ("source-offset", str(record.offset).encode()),
    ]
    future = await producer.send(topic, record.value, key=record.key, headers=headers)
    await future
    log.warning(
        "message.dead_lettered", topic=record.topic, partition=record.partition, offset=record.offset, reason=reason
    )
