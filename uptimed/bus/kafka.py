"""Kafka clients configured once from ``[kafka]``: producer, consumers, admin, topics."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2

from uptimed.config import KafkaSettings
from uptimed.errors import ServiceUnavailable

log = structlog.get_logger()


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    """The options every client shares: servers, identity, security."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": int(settings.request_timeout * 1000),
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=settings.ssl_cafile, certfile=settings.ssl_certfile, keyfile=settings.ssl_keyfile
        )
    if settings.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    return options


def make_producer(settings: KafkaSettings, *, linger_ms: int = 0, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent producer (``acks=all``).

    No linger by default: under load, records still batch while a request is in
    flight, and an idle pipeline does not wait 5 ms per hop (bench/notify.py:
    check-to-webhook p50 22.6 -> 12.4 ms without the two lingers).
    """
    return AIOKafkaProducer(
        **connection_options(settings),
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        compression_type=None,
        **overrides,
    )


SESSION_TIMEOUT_MS = 6_000
"""How long a dead member keeps its partitions: the broker's smallest allowed
(``group.min.session.timeout.ms``, 6 s by default), so a killed process's
monitors move to another within about 7 s (the rebalance itself takes the rest)."""
HEARTBEAT_INTERVAL_MS = 1_000
"""Well under a third of the session timeout, so two lost heartbeats do not end a session."""


def make_consumer(settings: KafkaSettings, *topics: str, group_id: str, **overrides: Any) -> AIOKafkaConsumer:
    """A group consumer with manual commits: offsets move only after the work is durable."""
    options: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
        "max_poll_interval_ms": 300_000,
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **connection_options(settings), **options)


def partition_of(monitor_id: int, partitions: int) -> int:
    """The partition of a topic with ``partitions`` partitions that a monitor's messages go to.

    The producer's default partitioner (murmur2 of the key, as Kafka's Java
    client), applied to the key every uptimed message carries.
    """
    return (murmur2(str(monitor_id).encode()) & 0x7FFFFFFF) % partitions


async def ensure_topics(settings: KafkaSettings, *, timeout: float = 30.0) -> list[str]:
    """Create uptimed's topics that are missing; returns the names created.

    Skipped when ``manage_topics`` is false (topics managed elsewhere).
    """
    if not settings.manage_topics:
        return []
    names = [settings.topics.checks, settings.topics.events, settings.topics.dead_letters]
    admin = AIOKafkaAdminClient(**connection_options(settings))
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            existing = set(await admin.list_topics())
            config = {"retention.ms": str(int(settings.retention * 1000)), "cleanup.policy": "delete"}
            if settings.min_insync_replicas:
                config["min.insync.replicas"] = str(settings.min_insync_replicas)
            # Results carry the broker's time of arrival: how long they waited for the bus shows in events.
            per_topic = {settings.topics.checks: {"message.timestamp.type": "LogAppendTime"}}
            missing = [
                NewTopic(
                    name, settings.partitions, settings.replication_factor, topic_configs=config | per_topic.get(name, {})
                )
                for name in names
                if name not in existing
            ]
            if missing:
                await admin.create_topics(missing)
                log.info("kafka.topics_created", topics=[t.name for t in missing])
            return [t.name for t in missing]
    except TopicAlreadyExistsError:
        return []  # another process created them meanwhile
    except (KafkaError, OSError, TimeoutError) as exc:
        raise ServiceUnavailable("kafka", f"cannot reach {','.join(settings.bootstrap_servers)}: {exc or type(exc).__name__}") from exc
    finally:
        await admin.close()
