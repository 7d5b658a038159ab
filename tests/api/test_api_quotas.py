"""Quotas and rate limits of each user: counts answer 409, rates 429 with Retry-After, both naming the setting.

And one user's stuck test sends cannot hold up another user's: each
destination gets at most ``[notify] connections_per_destination`` connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.conftest import Api, make_person, monitor_body, running_api
from tests.support import Stack, WebhookReceiver, eventually
from uptimed.channels.http import DeliveryTransport


async def test_the_1001st_monitor_is_refused_naming_the_limit(api: Api) -> None:
    alice = await make_person(api, "alice")
    bob = await make_person(api, "bob")
    await api.pool.execute(
        """
        INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s)
        SELECT $1, 'm' || n, 'https://shop.example/' || n, 60, 10 FROM generate_series(1, 1000) n
        """,
        alice.id,
    )
    # The config file's monitors are the operator's: they do not count.
    await api.pool.execute(
        "INSERT INTO monitors (owner_id, config_key, name, target, interval_s, timeout_s) "
        "VALUES ($1, 'declared', 'd', 'https://declared.example/', 60, 10)",
        alice.id,
    )
    response = await alice.client.post("/api/v1/monitors", json=monitor_body())
    assert response.status_code == 409
    assert response.json() == {"detail": "limit reached: at most 1000 monitors per user ([quotas] monitors_per_user)"}
    assert (await bob.client.post("/api/v1/monitors", json=monitor_body())).status_code == 201
    await alice.client.delete(f"/api/v1/monitors/{await api.pool.fetchval('SELECT min(id) FROM monitors')}")
    assert (await alice.client.post("/api/v1/monitors", json=monitor_body())).status_code == 201


async def test_concurrent_creates_stop_exactly_at_the_limit(stack: Stack) -> None:
    async with running_api(stack, quotas={"monitors_per_user": 5, "integrations_per_user": 3}) as api:
        alice = await make_person(api, "alice")
        answers = await asyncio.gather(
            *(alice.client.post("/api/v1/monitors", json=monitor_body(name=f"m{n}")) for n in range(20))
        )
        assert sorted(a.status_code for a in answers) == [201] * 5 + [409] * 15
        hook = {"type": "webhook", "config": {"webhookUrl": "https://hooks.example/x"}}
        answers = await asyncio.gather(*(alice.client.post("/api/v1/integrations", json=hook) for _ in range(6)))
        assert sorted(a.status_code for a in answers) == [201] * 3 + [409] * 3
        refused = next(a for a in answers if a.status_code == 409)
        assert (
            refused.json()["detail"]
            == "limit reached: at most 3 integrations per user ([quotas] integrations_per_user)"
        )


async def test_an_interval_below_the_minimum_is_refused_at_its_field(api: Api) -> None:
    alice = await make_person(api, "alice")
    response = await alice.client.post("/api/v1/monitors", json=monitor_body(interval=5, timeout=2))
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == "interval" and problem["type"] == "interval_too_short"
    assert (
        problem["msg"] == "must be at least 30 s for monitors made through the API or the pages ([quotas] min_interval)"
    )


async def test_test_sends_beyond_their_rate_answer_429_with_retry_after(api: Api, receiver: WebhookReceiver) -> None:
    alice = await make_person(api, "alice")
    bob = await make_person(api, "bob")
    created = await alice.client.post(
        "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": receiver.url("/a")}}
    )
    path = f"/api/v1/integrations/{created.json()['id']}/test"
    for _ in range(10):
        assert (await alice.client.post(path)).json()["status"] == "sent"
    refused = await alice.client.post(path)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 6  # one more every 6 s at 10 a minute
    assert "[quotas] test_sends_per_minute" in refused.json()["detail"]
    assert len(receiver.to("/a")) == 10
    # Bob's own budget is untouched.
    bobs = await bob.client.post(
        "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": receiver.url("/b")}}
    )
    assert (await bob.client.post(f"/api/v1/integrations/{bobs.json()['id']}/test")).json()["status"] == "sent"


async def test_api_requests_beyond_a_tokens_rate_answer_429(stack: Stack) -> None:
    async with running_api(stack, quotas={"api_requests_per_minute": 5}) as api:
        alice = await make_person(api, "alice")
        bob = await make_person(api, "bob")
        statuses = [(await alice.client.get("/api/v1/monitors")).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        refused = await alice.client.get("/api/v1/monitors")
        assert int(refused.headers["Retry-After"]) >= 1
        assert "[quotas] api_requests_per_minute" in refused.json()["detail"]
        assert (await bob.client.get("/api/v1/monitors")).status_code == 200
        # An unknown token is refused as before, and spends nobody's budget.
        assert (await api.client("upt_nope").get("/api/v1/monitors")).status_code == 401


@pytest.fixture
async def black_hole() -> AsyncIterator[dict[str, int]]:
    """A server that accepts connections and never answers; ``port`` and the most connections open at once."""
    state = {"open": 0, "most": 0, "port": 0}

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state["open"] += 1
        state["most"] = max(state["most"], state["open"])
        try:
            await reader.read()  # until the client gives up
        finally:
            state["open"] -= 1
            writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    state["port"] = server.sockets[0].getsockname()[1]
    yield state
    server.close()


async def test_200_stuck_test_sends_of_one_user_do_not_delay_another_users(
    stack: Stack, black_hole: dict[str, int], receiver: WebhookReceiver
) -> None:
    async with running_api(stack, quotas={"test_sends_per_minute": 1000}) as api:
        mallory = await make_person(api, "mallory")
        bob = await make_person(api, "bob")
        stuck = await mallory.client.post(
            "/api/v1/integrations",
            json={"type": "webhook", "config": {"webhookUrl": f"http://127.0.0.1:{black_hole['port']}/x"}},
        )
        fine = await bob.client.post(
            "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": receiver.url("/bob")}}
        )
        path = f"/api/v1/integrations/{stuck.json()['id']}/test"
        flood = [asyncio.create_task(mallory.client.post(path, timeout=30)) for _ in range(200)]
        transport = api.http._transport
        assert isinstance(transport, DeliveryTransport)
        try:
            # Every one of them is in the delivery client (10 connected, 190 waiting their turn) before bob sends.
            async def all_in() -> bool:
                return transport.requests >= 200

            await eventually(all_in, timeout=20)
            assert not any(task.done() for task in flood)
            latencies = []
            for _ in range(5):
                started = time.perf_counter()
                answer = await bob.client.post(f"/api/v1/integrations/{fine.json()['id']}/test")
                latencies.append(time.perf_counter() - started)
                assert answer.json()["status"] == "sent"
            assert max(latencies) < 1.0, latencies
            print(f"\nbob's test sends beside 200 stuck ones: {max(latencies) * 1000:.0f} ms at most")
            assert black_hole["most"] == api.settings.notify.connections_per_destination == 10
        finally:
            answers = await asyncio.gather(*flood)
        assert {a.json()["status"] for a in answers} == {"failed"}
        assert all(isinstance(a, httpx.Response) for a in answers)
