"""``/healthz``, ``/readyz``, ``/metrics`` and the OpenAPI document: no auth, real services behind readiness."""

from __future__ import annotations

import time

import anyio
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api
from tests.support import Stack
from uptimed import metrics
from uptimed.api import ping
from uptimed.api.health import daemon_readiness
from uptimed.api.routes import MODULES as routes_modules
from uptimed.check import CheckResult, CheckStatus
from uptimed.event import EventType, MonitorEvent
from uptimed.supervisor import Part

pytestmark = pytest.mark.kafka


async def test_healthz_answers_without_a_token(api: Api) -> None:
    response = await api.client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_when_every_part_is_usable_and_503_naming_the_one_that_is_not(api: Api) -> None:
    client = api.client()

    ready = await client.get("/readyz")
    api.ready["kafka_producer"] = False
    not_ready = await client.get("/readyz")

    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert not_ready.status_code == 503
    assert not_ready.json()["ready"] is False
    assert not_ready.json()["parts"]["kafka_producer"] is False
    assert not_ready.json()["parts"]["postgresql"] is True


async def test_readyz_says_why_a_part_is_not_usable(api: Api) -> None:
    api.ready["dispatcher"] = "crashed (ConnectionRefusedError: ...); restarting in 2.0 s"

    response = await api.client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["parts"]["dispatcher"] is False
    assert response.json()["problems"] == {"dispatcher": "crashed (ConnectionRefusedError: ...); restarting in 2.0 s"}


async def test_daemon_readiness_reads_the_parts_and_the_watch_without_any_io() -> None:
    async def forever() -> None:
        await anyio.sleep_forever()

    running, crashed = Part("notifier", forever), Part("dispatcher", forever)
    running.healthy, running.started_at = True, time.monotonic()
    crashed.last_error, crashed.restart_at = "OSError: refused", time.monotonic() + 4
    services = {"postgresql": None, "kafka": "unreachable for 3 s: KafkaConnectionError"}

    states = await daemon_readiness(services=lambda: services, parts=lambda: [running, crashed])()

    assert states["postgresql"] is True and states["notifier"] is True
    assert states["kafka"] == "unreachable for 3 s: KafkaConnectionError"
    assert isinstance(states["dispatcher"], str) and states["dispatcher"].startswith("crashed (OSError: refused)")


async def test_metrics_parse_and_carry_every_series_the_pipeline_records(api: Api, topics: Stack) -> None:
    # What the probe worker, evaluator, dispatcher and consumers record (see uptimed.metrics), here by hand.
    metrics.observe_check(
        CheckResult(
            monitor_id=1,
            region="eu-west",
            status=CheckStatus.UP,
            response_time_ms=42.0,
            checked_at_ms=1_700_000_000_250,
            scheduled_at_ms=1_700_000_000_000,
        )
    )
    metrics.observe_check(CheckResult(monitor_id=1, region="eu-west", status=CheckStatus.DOWN))
    metrics.observe_events([MonitorEvent(type=EventType.DOWN, websiteId=1, userId=1, url="https://x.example/")])
    metrics.observe_delivery("webhook", "sent", 0.012)
    metrics.observe_delivery("slack", "retrying", 0.3)
    # Consumer lag from a real consumer: 5 records on a partition, 2 read.
    topic = f"{topics.prefix}.checks"
    producer = AIOKafkaProducer(bootstrap_servers=topics.bootstrap)
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(topic, b"x%d" % n, partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=topics.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        batch = await consumer.getmany(timeout_ms=10_000, max_records=2)
        metrics.observe_consumer_lag(consumer, "test-group", batch)
    finally:
        await consumer.stop()

    response = await api.client().get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("uptimed_checks_total", (("region", "eu-west"), ("result", "up")))] >= 1
    assert samples[("uptimed_checks_total", (("region", "eu-west"), ("result", "down")))] >= 1
    assert samples[("uptimed_check_duration_seconds_count", (("region", "eu-west"),))] >= 1
    assert samples[("uptimed_schedule_lag_seconds_sum", (("region", "eu-west"),))] >= 0.25
    assert samples[("uptimed_events_published_total", (("type", "website.down"),))] >= 1
    assert samples[("uptimed_deliveries_total", (("channel", "webhook"), ("status", "sent")))] >= 1
    assert samples[("uptimed_delivery_duration_seconds_count", (("channel", "slack"),))] >= 1
    assert samples[("uptimed_consumer_lag", (("group", "test-group"), ("partition", "0"), ("topic", topic)))] == 3
    assert samples[("uptimed_channels", (("state", "loaded"),))] >= 5
    assert ("uptimed_channels", (("state", "broken"),)) in samples


async def test_openapi_describes_every_route_with_its_errors(api: Api) -> None:
    client = api.client()
    spec = (await client.get("/openapi.json")).json()
    docs = await client.get("/docs")

    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    routes = [r for module in (*routes_modules, ping) for r in module.router.routes if isinstance(r, APIRoute)]
    assert sum(len(r.methods) for r in routes) == sum(len(operations) for operations in spec["paths"].values()) >= 25
    for route in routes:
        for method in route.methods:
            operation = spec["paths"][route.path][method.lower()]
            assert operation.get("summary"), route.path
            responses = operation["responses"]
            if route.path.startswith("/api/v1/"):
                assert "401" in responses, (method, route.path)
                assert responses["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/Problem")
                assert operation["security"] == [{"token": []}]
            if "{" in route.path:
                assert "404" in responses and "422" in responses, (method, route.path)
            changes = method in ("PUT", "PATCH", "DELETE") and not route.path.endswith("/badges")  # the owner's choice
            if changes and route.path.startswith(
                ("/api/v1/monitors/{", "/api/v1/integrations/{", "/api/v1/maintenance/{")
            ):
                assert "409" in responses, (method, route.path)
    assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert {"Problem", "ValidationProblem", "IntegrationOut", "MonitorOut"} <= set(spec["components"]["schemas"])
