"""Kafka clients configured once from ``[kafka]``: producer, consumers, admin, topics."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2
from aiokafka.protocol.admin import ApiVersionRequest

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
FETCH_MAX_WAIT_MS = 2_000
"""How long the broker holds a fetch that finds nothing (Kafka's default is 500 ms)."""
HEARTBEAT_INTERVAL_MS = 1_000
"""Well under a third of the session timeout, so two lost heartbeats do not end a session."""
FETCHER_WAKE_MS = 1_000
"""aiokafka's ``consumer_timeout_ms``: how often its fetch routine wakes with nothing to do (200 ms by default).

The routine is otherwise woken by what it waits for (a fetch's answer, records
consumed, a partition resumed or unassigned, fresh metadata), so this is a
safety net; at 200 ms it was five wake-ups a second per consumer, a fifth of an
idle daemon's (bench/README.md, the idle floor)."""


def make_consumer(settings: KafkaSettings, *topics: str, group_id: str, **overrides: Any) -> AIOKafkaConsumer:
    """A group consumer with manual commits: offsets move only after the work is durable."""
    options: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
        # An idle fetch waits this long at the broker (new records answer it at once): fewer
        # round trips for an idle daemon and its broker, no later alert.
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "max_poll_interval_ms": 300_000,
        "consumer_timeout_ms": FETCHER_WAKE_MS,
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **connection_options(settings), **options)


def partition_of(monitor_id: int, partitions: int) -> int:
    """The partition of a topic with ``partitions`` partitions that a monitor's messages go to.

    The producer's default partitioner (murmur2 of the key, as Kafka's Java
    client), applied to the key every uptimed message carries.
    """
    hashed: int = murmur2(str(monitor_id).encode())
    return (hashed & 0x7FFFFFFF) % partitions


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
                    name,
                    settings.partitions,
                    settings.replication_factor,
                    topic_configs=config | per_topic.get(name, {}),
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
        raise ServiceUnavailable(
            "kafka", f"cannot reach {','.join(settings.bootstrap_servers)}: {exc or type(exc).__name__}"
        ) from exc
    finally:
        await admin.close()


OLDEST_SUPPORTED = (3, 9)
SUPPORTED_BROKERS = "Kafka 3.9 and 4.x (tested: 3.9.1 and 4.4.0)"
"""The brokers uptimed supports, as the warning about an older one names them."""

# Which release a broker runs, read from its ApiVersions answer (Kafka has no
# request that names its version). Each row: the release that first advertised
# that version of that request, measured on brokers 3.9.1, 4.0.2, 4.1.2,
# 4.2.1, 4.3.1 and 4.4.0. A release only adds versions, so the first row a
# broker meets is its release.
RELEASE_MARKS: tuple[tuple[tuple[int, int], int, int], ...] = (
    ((4, 4), 18, 5),  # ApiVersions v5
    ((4, 3), 35, 5),  # DescribeLogDirs v5
    ((4, 2), 2, 11),  # ListOffsets v11
    ((4, 1), 0, 13),  # Produce v13
    ((4, 0), 3, 13),  # Metadata v13
    ((3, 9), 1, 17),  # Fetch v17 (KIP-853)
)


@dataclass(frozen=True)
class BrokerRelease:
    """A broker's release as far as its ApiVersions tell: ``(major, minor)``, or None when older than 3.9."""

    release: tuple[int, int] | None

    @classmethod
    def from_api_versions(cls, api_versions: Mapping[int, tuple[int, int]]) -> BrokerRelease:
        """From ApiVersions: api key -> (min version, max version)."""
        for release, api_key, version in RELEASE_MARKS:
            if api_versions.get(api_key, (0, -1))[1] >= version:
                return cls(release)
        return cls(None)

    @property
    def supported(self) -> bool:
        return self.release is not None and self.release >= OLDEST_SUPPORTED

    def sort_key(self) -> tuple[int, int]:
        return self.release or (0, 0)

    def __str__(self) -> str:
        if self.release is None:
            return f"older than {OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]}"
        text = f"{self.release[0]}.{self.release[1]}"
        return f"{text} or newer" if self.release == RELEASE_MARKS[0][0] else text


async def broker_releases(settings: KafkaSettings, *, timeout: float = 30.0) -> dict[int, BrokerRelease]:
    """Each broker's release (node id -> release), from an ApiVersions request to every broker in the metadata."""
    client = AIOKafkaClient(**connection_options(settings))
    try:
        async with asyncio.timeout(timeout):
            await client.bootstrap()
            releases: dict[int, BrokerRelease] = {}
            for broker in sorted(client.cluster.brokers(), key=lambda b: b.nodeId):
                response = await client.send(broker.nodeId, ApiVersionRequest())
                versions = {key: (low, high) for key, low, high in response.api_versions}
                releases[broker.nodeId] = BrokerRelease.from_api_versions(versions)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise ServiceUnavailable(
            "kafka", f"cannot reach {','.join(settings.bootstrap_servers)}: {exc or type(exc).__name__}"
        ) from exc
    finally:
        await client.close()
    if not releases:
        raise ServiceUnavailable("kafka", f"{','.join(settings.bootstrap_servers)} listed no broker")
    return releases


async def log_broker_release(settings: KafkaSettings) -> BrokerRelease:
    """Log the brokers' release once (the oldest, during a rolling upgrade); warn when it is unsupported."""
    releases = await broker_releases(settings)
    oldest = min(releases.values(), key=BrokerRelease.sort_key)
    log.info("kafka.broker", version=str(oldest), brokers=len(releases))
    if not oldest.supported:
        log.warning("kafka.broker_unsupported", version=str(oldest), supported=SUPPORTED_BROKERS)
    return oldest
