"""Prometheus series of one uptimed process, in a registry of its own.

The parts record through the small functions below (one call at the place
where the thing happens); ``GET /metrics`` renders :data:`REGISTRY`. Labels
are regions, results, event types, channel names, statuses, consumer groups,
topics and partitions: never a URL, a config value or anything secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from uptimed.bus.messages import CheckResult, MonitorEvent

REGISTRY = CollectorRegistry(auto_describe=True)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CHECKS = Counter(
    "uptimed_checks", "Checks completed, by region and result (up / down).", ["region", "result"], registry=REGISTRY
)
CHECK_DURATION = Histogram(
    "uptimed_check_duration_seconds", "How long a check took, by region.", ["region"],
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
SCHEDULE_LAG = Histogram(
    "uptimed_schedule_lag_seconds", "Delay between a check being due and starting, by region.", ["region"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0), registry=REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "uptimed_events_published", "Monitor events published to Kafka, by type.", ["type"], registry=REGISTRY
)
DELIVERIES = Counter(
    "uptimed_deliveries", "Delivery attempts, by channel and outcome (sent / retrying / failed / skipped).",
    ["channel", "status"], registry=REGISTRY,
)
DELIVERY_DURATION = Histogram(
    "uptimed_delivery_duration_seconds", "How long one delivery attempt took, by channel.", ["channel"],
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "uptimed_consumer_lag", "Records behind the partition's high watermark, per consumer group and partition.",
    ["group", "topic", "partition"], registry=REGISTRY,
)


def observe_check(result: CheckResult) -> None:
    """A probe finished: count it, time it, and how late it started."""
    CHECKS.labels(result.region, result.status.value).inc()
    if result.response_time_ms is not None:
        CHECK_DURATION.labels(result.region).observe(result.response_time_ms / 1000)
    if result.scheduled_at_ms is not None:
        SCHEDULE_LAG.labels(result.region).observe(max(result.checked_at_ms - result.scheduled_at_ms, 0) / 1000)


def observe_events(events: Iterable[MonitorEvent]) -> None:
    """Events Kafka acknowledged."""
    for event in events:
        EVENTS_PUBLISHED.labels(event.type.value).inc()


def observe_delivery(channel: str, status: str, seconds: float | None = None) -> None:
    """One delivery attempt ended ``status``; ``seconds`` it took, when it was attempted."""
    DELIVERIES.labels(channel, status).inc()
    if seconds is not None:
        DELIVERY_DURATION.labels(channel).observe(seconds)


def observe_consumer_lag(consumer: Any, group: str, batch: Mapping[Any, Sequence[Any]]) -> None:
    """After ``getmany``: how far each partition of ``batch`` is behind its high watermark.

    ``consumer`` is an ``AIOKafkaConsumer``; its ``highwater`` is known after a fetch.
    """
    for tp, records in batch.items():
        highwater = consumer.highwater(tp)
        if highwater is not None and records:
            CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(max(highwater - records[-1].offset - 1, 0))


class _ChannelCollector(Collector):
    """``uptimed_channels{state="loaded"|"broken"}``, read from the registry at scrape time."""

    def __init__(self) -> None:
        self.registry: Any = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("uptimed_channels", "Notification channels, by state.", labels=["state"])
        loaded = len(self.registry.channels) if self.registry is not None else 0
        broken = len(self.registry.broken) if self.registry is not None else 0
        family.add_metric(["loaded"], loaded)
        family.add_metric(["broken"], broken)
        yield family


_CHANNELS = _ChannelCollector()
REGISTRY.register(_CHANNELS)


def track_channels(registry: Any) -> None:
    """Report this :class:`~uptimed.channels.registry.ChannelRegistry`'s loaded and broken channels."""
    _CHANNELS.registry = registry


def render() -> bytes:
    """The Prometheus text exposition of :data:`REGISTRY`."""
    return generate_latest(REGISTRY)
