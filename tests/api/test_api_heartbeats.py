"""Heartbeats through the API: a heartbeat monitor's ping URL, and what each ping leaves in the result buffer.

The app is the daemon's, with a ping receiver on the test's Redis; a ping's
result is read back from the region's result stream, where the forwarder
would take it to Kafka.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import redis.asyncio as aioredis
import structlog

from tests.api.conftest import REGIONS, Api, Person, make_person, monitor_body
from tests.support import Stack
from uptimed.api.server import shown_path
from uptimed.app import create_app
from uptimed.channels.registry import default_registry
from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.config import DatabaseSettings
from uptimed.monitor import PUSH_REGION
from uptimed.probe.pings import MESSAGE_BYTES, PingReceiver
from uptimed.probe.queue import results_stream
from uptimed.store.database import connect

LIMIT = 5


@pytest.fixture
async def redis_client(stack: Stack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(stack.redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{stack.prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def api(stack: Stack, redis_client: aioredis.Redis) -> AsyncIterator[Api]:
    """The API with the daemon's ping receiver (a limit of 5 pings a minute, to reach it soon)."""
    settings = stack.settings(probe={"regions": REGIONS})
    pool = await connect(DatabaseSettings(dsn=stack.dsn))
    http = httpx.AsyncClient(timeout=5.0)
    pings = PingReceiver(pool=pool, redis=redis_client, prefix=f"{stack.prefix}:", region=REGIONS[0], limit=LIMIT)

    async def readiness() -> dict[str, bool]:
        return {}

    app = create_app(
        pool=pool, registry=default_registry(), settings=settings, http=http, readiness=readiness, pings=pings
    )
    state = Api(app=app, pool=pool, settings=settings, http=http, ready={})
    yield state
    for client in state.clients:
        await client.aclose()
    await http.aclose()
    await pool.close()


@pytest.fixture
async def alice(api: Api) -> Person:
    return await make_person(api, "alice")


async def results(redis_client: aioredis.Redis, stack: Stack) -> list[CheckResult]:
    entries = await redis_client.xrange(results_stream(f"{stack.prefix}:", REGIONS[0]))
    return [CheckResult.model_validate_json(fields[b"v"]) for _, fields in entries]


async def create_heartbeat(alice: Person, **options: Any) -> dict[str, Any]:
    body = monitor_body(kind="heartbeat", target="backup@db1", heartbeat={"period": "1h", "grace": "5m", **options})
    created = await alice.client.post("/api/v1/monitors", json=body)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


async def test_a_heartbeat_has_an_unguessable_ping_url_kept_across_edits(alice: Person) -> None:
    created = await create_heartbeat(alice)

    url = created["ping_url"]
    assert url.startswith("http://uptimed.test/ping/") and len(url.rsplit("/", 1)[1]) >= 24
    assert (created["failure_threshold"], created["success_threshold"], created["regions"]) == (1, 1, [])
    assert created["heartbeat"] == {"period": 3600.0, "grace": 300.0, "cron": None, "timezone": "UTC"}
    edited = await alice.client.put(
        f"/api/v1/monitors/{created['id']}", json=monitor_body(kind="heartbeat", heartbeat={"cron": "0 3 * * *"})
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["ping_url"] == url
    other = await create_heartbeat(alice)
    assert other["ping_url"] != url


async def test_each_ping_is_a_check_result_in_the_buffer(
    api: Api, alice: Person, redis_client: aioredis.Redis, stack: Stack
) -> None:
    url = (await create_heartbeat(alice))["ping_url"]
    pinger = api.client()

    answers = [
        await pinger.get(url),
        await pinger.head(url),
        await pinger.post(url, content=b"backup done: 42 GiB\n"),
        await pinger.get(url + "/fail"),
        await pinger.post(url + "/3", content="x" * 200_000),  # a long log: its start is kept
    ]

    assert [a.status_code for a in answers] == [200] * 5
    assert answers[0].text == "OK" and answers[1].text == ""
    found = await results(redis_client, stack)
    assert [(r.status, r.error_class, r.error) for r in found] == [
        (CheckStatus.UP, None, None),
        (CheckStatus.UP, None, None),
        (CheckStatus.UP, None, None),
        (CheckStatus.DOWN, ErrorClass.REPORTED, "the job reported a failure"),
        (CheckStatus.DOWN, ErrorClass.REPORTED, "the job exited with status 3"),
    ]
    assert {r.region for r in found} == {PUSH_REGION}
    assert found[2].message == "backup done: 42 GiB"
    assert found[4].message == "x" * MESSAGE_BYTES


async def test_start_then_success_gives_the_runs_duration(
    api: Api, alice: Person, redis_client: aioredis.Redis, stack: Stack
) -> None:
    url = (await create_heartbeat(alice))["ping_url"]
    pinger = api.client()

    started = time.monotonic()
    assert (await pinger.get(url + "/start")).status_code == 200
    await anyio.sleep(0.3)  # the job's run: what the duration measures
    assert (await pinger.get(url + "/0")).status_code == 200
    took_ms = (time.monotonic() - started) * 1000
    assert (await pinger.get(url)).status_code == 200  # no start before it: no duration

    [run, plain] = await results(redis_client, stack)  # a start is no result of its own
    assert run.status is CheckStatus.UP and run.response_time_ms is not None
    assert 300 <= run.response_time_ms <= took_ms + 1
    assert plain.response_time_ms is None


async def test_an_unknown_token_is_not_found_and_says_nothing_more(api: Api, alice: Person) -> None:
    url = (await create_heartbeat(alice))["ping_url"]
    http_monitor = await alice.client.post("/api/v1/monitors", json=monitor_body())
    token_of_http = await api.pool.fetchval("SELECT ping_token FROM monitors WHERE id = $1", http_monitor.json()["id"])
    await api.pool.execute(
        "UPDATE monitors SET ping_token = 'not-a-heartbeat-0123456789' WHERE id = $1", http_monitor.json()["id"]
    )
    pinger = api.client()

    answers = [
        await pinger.get("/ping/" + "A" * 24),
        await pinger.get("/ping/short"),
        await pinger.post("/ping/" + "x" * 500, content=b"hello"),
        await pinger.get("/ping/not-a-heartbeat-0123456789"),
        await pinger.get(url + "/restart"),
        await pinger.get(url + "/256"),
    ]

    assert token_of_http is None
    assert {(a.status_code, a.text, a.headers["content-type"]) for a in answers} == {
        (404, "not found", "text/plain; charset=utf-8")
    }


async def test_pings_are_limited_per_token(api: Api, alice: Person) -> None:
    first = (await create_heartbeat(alice))["ping_url"]
    second = (await create_heartbeat(alice))["ping_url"]
    pinger = api.client()

    statuses = [(await pinger.get(first)).status_code for _ in range(LIMIT + 2)]
    limited = await pinger.get(first)
    other = await pinger.get(second)

    assert statuses == [200] * LIMIT + [429] * 2
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert other.status_code == 200


async def test_the_access_log_never_holds_a_ping_token(api: Api, alice: Person) -> None:
    url = (await create_heartbeat(alice))["ping_url"]
    token = url.rsplit("/", 1)[1]

    with structlog.testing.capture_logs() as logs:
        await api.client().post(url + "/fail", content=b"disk full")

    assert shown_path(f"/ping/{token}/fail") == "/ping/<token>/fail"
    assert [line["path"] for line in logs if line["event"] == "api.request"] == ["/ping/<token>/fail"]
    assert token not in json.dumps(logs, default=str)
