"""Prometheus series of one uptimed process, in a registry of its own.

The parts record through the small functions below (one call at the place
where the thing happens); ``GET /metrics`` renders :data:`REGISTRY`. Labels
are regions, results, event types, channel names, statuses, consumer groups,
topics and partitions: never a URL, a config value or anything secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from uptimed.check import CheckResult
from uptimed.event import MonitorEvent

if TYPE_CHECKING:  # the registry imports the metrics
    from uptimed.channels.registry import ChannelRegistry

REGISTRY = CollectorRegistry(auto_describe=True)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

CHECKS = Counter(
    "uptimed_checks", "Checks completed, by region and result (up / down).", ["region", "result"], registry=REGISTRY
)
CHECK_DURATION = Histogram(
    "uptimed_check_duration_seconds",
    "How long a check took, by region.",
    ["region"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SCHEDULE_LAG = Histogram(
    "uptimed_schedule_lag_seconds",
    "Delay between a check being due and starting, by region.",
    ["region"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "uptimed_events_published", "Monitor events published to Kafka, by type.", ["type"], registry=REGISTRY
)
DELIVERIES = Counter(
    "uptimed_deliveries",
    "Delivery attempts, by channel and outcome (sent / retrying / failed / skipped).",
    ["channel", "status"],
    registry=REGISTRY,
)
DELIVERY_DURATION = Histogram(
    "uptimed_delivery_duration_seconds",
    "How long one delivery attempt took, by channel.",
    ["channel"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "uptimed_consumer_lag",
    "Records behind the partition's high watermark, per consumer group and partition.",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
REGION_LAST_RESULT = Gauge(
    "uptimed_region_last_result_timestamp_seconds",
    "Check time of the newest result this process evaluated from each region; its age tells a silent region.",
    ["region"],
    registry=REGISTRY,
)
REGION_SILENT_MONITORS = Gauge(
    "uptimed_region_silent_monitors",
    "Monitors of this process's partitions for which a region has stopped reporting (it no longer counts).",
    ["region"],
    registry=REGISTRY,
)
RESULTS_BUFFERED = Gauge(
    "uptimed_results_buffered",
    "Check results waiting in Redis for the message bus, per region.",
    ["region"],
    registry=REGISTRY,
)
RESULTS_DROPPED = Counter(
    "uptimed_results_dropped",
    "Check results lost because the buffer was full while the bus was away, per region.",
    ["region"],
    registry=REGISTRY,
)


class _RegionAgeCollector(Collector):
    """``uptimed_region_last_result_age_seconds``: computed at scrape time from the newest result per region."""

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "uptimed_region_last_result_age_seconds",
            "Seconds since the check time of the newest result from each region that this process evaluated "
            "or, at its last partition assignment, found stored.",
            labels=["region"],
        )
        now = time.time()
        for region, at in sorted(_newest_result.items()):
            family.add_metric([region], max(0.0, now - at))
        yield family


_newest_result: dict[str, float] = {}
REGISTRY.register(_RegionAgeCollector())


def observe_region_results(newest_ms: Mapping[str, int]) -> None:
    """The evaluator stored results; ``newest_ms`` is the newest check time per region among them."""
    for region, at_ms in newest_ms.items():
        at = at_ms / 1000
        if at > _newest_result.get(region, 0.0):
            _newest_result[region] = at
            REGION_LAST_RESULT.labels(region).set(at)


def observe_silent_regions(silent: Mapping[str, int]) -> None:
    """Per region, the monitors it is silent for (regions not named: none)."""
    for region in set(_silent_seen) | set(silent):
        REGION_SILENT_MONITORS.labels(region).set(silent.get(region, 0))
    _silent_seen.update(silent)


_silent_seen: set[str] = set()


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
        self.registry: ChannelRegistry | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("uptimed_channels", "Notification channels, by state.", labels=["state"])
        loaded = len(self.registry.channels) if self.registry is not None else 0
        broken = len(self.registry.broken) if self.registry is not None else 0
        family.add_metric(["loaded"], loaded)
        family.add_metric(["broken"], broken)
        yield family


_CHANNELS = _ChannelCollector()
REGISTRY.register(_CHANNELS)


def track_channels(registry: ChannelRegistry) -> None:
    """Report this :class:`~uptimed.channels.registry.ChannelRegistry`'s loaded and broken channels."""
    _CHANNELS.registry = registry


class _PartsCollector(Collector):
    """The supervisor's parts and the watched services, read at scrape time.

    ``uptimed_part_restarts_total{part}``, ``uptimed_part_ready{part}``,
    ``uptimed_part_progress_age_seconds{part}`` (since its last progress, or
    its start; absent while it is not running) and ``uptimed_service_up{service}``.
    """

    def __init__(self) -> None:
        self.parts: Callable[[], Iterable[Any]] = lambda: ()
        self.services: Callable[[], Mapping[str, str | None]] = dict

    def collect(self) -> Iterable[Any]:
        restarts = CounterMetricFamily("uptimed_part_restarts", "Restarts of each part after a crash.", labels=["part"])
        ready = GaugeMetricFamily("uptimed_part_ready", "1 when the part is usable (as /readyz says).", labels=["part"])
        age = GaugeMetricFamily(
            "uptimed_part_progress_age_seconds",
            "Seconds since the part last made progress (or started).",
            labels=["part"],
        )
        now = time.monotonic()
        for part in self.parts():
            restarts.add_metric([part.name], part.restarts)
            ready.add_metric([part.name], 0 if part.problem(now) else 1)
            idle = part.idle_for(now)
            if idle is not None:
                age.add_metric([part.name], idle)
        up = GaugeMetricFamily("uptimed_service_up", "1 while the service answers its probe.", labels=["service"])
        for name, problem in self.services().items():
            up.add_metric([name], 0 if problem else 1)
        yield from (restarts, ready, age, up)


_PARTS = _PartsCollector()
REGISTRY.register(_PARTS)


def track_parts(parts: Callable[[], Iterable[Any]], services: Callable[[], Mapping[str, str | None]]) -> None:
    """Report these supervisor parts (``Part`` objects) and services (``ServiceWatch.problems``)."""
    _PARTS.parts, _PARTS.services = parts, services


def render() -> bytes:
    """The Prometheus text exposition of :data:`REGISTRY`."""
    return generate_latest(REGISTRY)
