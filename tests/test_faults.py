"""uptimed keeps watching when its own parts fail: faults injected into the real services.

Each test runs the real ``uptimed run`` against the session's PostgreSQL,
Redis and Kafka and breaks one of them the way an operator's bad day does:
the broker killed with SIGKILL for many seconds, a region's process killed,
a process killed and its partitions and leadership taken over. What a user
would notice is asserted: checks that kept running, alerts with their true
times, exactly once, and the failure made visible.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Broker, Stack, Target, WebhookReceiver, eventually, to_toml
from tests.test_monitoring import monitor

pytestmark = pytest.mark.kafka


@pytest.fixture
async def broker(services: dict[str, str]) -> AsyncIterator[Broker]:
    broker = Broker(services["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"])
    yield broker
    await broker.start()  # whatever the test did, the next one finds the broker up


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


def webhook(receiver: WebhookReceiver, owner: str = "alice") -> str:
    return (
        f'[[integrations]]\nowner = "{owner}"\nkey = "hook"\ntype = "webhook"\n'
        f'config = {{ webhookUrl = "{receiver.url("/hook")}" }}\n'
    )


def deliveries(receiver: WebhookReceiver) -> list[dict[str, Any]]:
    return [request.json() for request in receiver.to("/hook")]


async def test_a_broker_outage_neither_stops_checking_nor_loses_or_doubles_an_alert(
    topics: Stack, broker: Broker, receiver: WebhookReceiver, start_daemon
) -> None:
    stack = topics
    target = await Target().start()
    steady = [monitor(target.url(f"/s{i}"), name=f"s{i}", timeout=0.5) for i in range(150)]
    flappers = [f"f{i}" for i in range(4)]
    flapping = [
        monitor(target.url(f"/{name}"), name=name, timeout=0.5, failure_threshold=1, success_threshold=1)
        for name in flappers
    ]
    conn = await asyncpg.connect(stack.dsn)
    try:
        await start_daemon(stack.toml("".join(steady + flapping) + webhook(receiver)))

        async def all_up() -> bool:
            return await conn.fetchval(
                "SELECT count(*) FROM monitor_state s JOIN monitors m ON m.id = s.monitor_id"
                " WHERE m.name = ANY($1::text[]) AND s.state->>'status' = 'up'",
                flappers,
            ) == len(flappers)

        await eventually(all_up, timeout=60)

        broker.kill()
        killed_at = time.time()
        flips: dict[str, list[tuple[str, float]]] = {name: [] for name in flappers}

        async def flip(names: list[str], status: int, at: float) -> None:
            # The outage's script runs on its own clock: these waits are the fault, not a condition.
            await asyncio.sleep(max(0.0, at - (time.time() - killed_at)))
            for name in names:
                target.by_path[f"/{name}"] = status
                flips[name].append(("website.down" if status == 500 else "website.up", time.time()))

        # During the outage: two monitors go down and up, two flap twice.
        await flip(flappers, 500, 4)
        await flip(flappers[2:], 200, 8)
        await flip(flappers[:2], 200, 10)
        await flip(flappers[2:], 500, 12)
        await flip(flappers[2:], 200, 16)
        await asyncio.sleep(max(0.0, 20 - (time.time() - killed_at)))  # about 20 s without a broker
        restarted_at = time.time()
        await broker.start()

        expected = sum(len(f) for f in flips.values())
        await receiver.wait_for("/hook", count=expected, timeout=90)

        # Checking went on at its rate all along (stored checks, counted by their check times).
        window = (killed_at + 1, restarted_at - 1)
        due = (len(steady) + len(flapping)) * (window[1] - window[0])

        async def stored_in_window() -> int:
            return await conn.fetchval(
                "SELECT count(*) FROM checks WHERE checked_at BETWEEN to_timestamp($1) AND to_timestamp($2)", *window
            )

        async def all_stored() -> bool:
            return await stored_in_window() >= 0.95 * due

        await eventually(all_stored, timeout=30)
        assert await stored_in_window() <= due * 1.05 + len(steady) + len(flapping)

        # Every transition once, with its true time, and no second copy of anything.
        sent = deliveries(receiver)
        assert len({d["data"]["eventId"] for d in sent}) == len(sent) == expected
        for name in flappers:
            mine = sorted((d["data"] for d in sent if d["data"]["name"] == name), key=lambda e: e["timestamp"])
            assert [e["type"] for e in mine] == [kind for kind, _ in flips[name]]
            for event, (_, flipped_at) in zip(mine, flips[name], strict=True):
                assert -0.1 <= event["timestamp"] / 1000 - flipped_at <= 1.3, (name, event, flipped_at)
                assert event["lateReason"] == "the message bus was unavailable"
                assert event["detectedAt"] / 1000 >= restarted_at
            # downtime from check times: each end within the bound above (one interval plus a check's start lag)
            real = [
                up_at - down_at for (_, down_at), (_, up_at) in zip(flips[name][::2], flips[name][1::2], strict=True)
            ]
            told = [e["downtimeSeconds"] for e in mine if e["type"] == "website.up"]
            assert all(abs(t - r) <= 1.3 for t, r in zip(told, real, strict=True)), (name, told, real)
        assert not any(d["data"]["name"].startswith("s") for d in sent)
    finally:
        await conn.close()
        await target.stop()


def region_config(stack: Stack, region: str) -> str:
    sections = stack.sections()
    sections["probe"] = {"regions": [region], "cluster_regions": ["eu", "us"]}
    sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": 0}
    return to_toml(sections)


async def metrics_of(port: int) -> dict[tuple[str, str], float]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        text = (await client.get("/metrics")).text
    return {
        (sample.name, sample.labels.get("region", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_dead_region_does_not_blind_a_quorum_monitor_and_its_silence_shows(
    topics: Stack, receiver: WebhookReceiver, start_daemon
) -> None:
    stack = topics
    target = await Target().start()
    # Default quorum: a majority of its two regions, so both must agree while both report.
    site = monitor(target.url("/shop"), name="shop", timeout=0.5, failure_threshold=2, success_threshold=1)
    conn = await asyncpg.connect(stack.dsn)
    try:
        eu = await start_daemon(region_config(stack, "eu") + site + webhook(receiver))
        eu_port = (await eu.wait_for("api.listening"))["port"]
        us = await start_daemon(region_config(stack, "us") + site + webhook(receiver))
        await target.wait_hits(3, region="us", status=200)
        await target.wait_hits(3, region="eu", status=200)

        us.process.kill()  # the us region's only process dies
        await us.process.wait()
        killed_at = time.time()
        target.status = 500  # and then the site breaks, seen by eu alone
        [alert] = await receiver.wait_for("/hook", timeout=30)
        down = alert.json()["data"]
        assert down["type"] == "website.down" and down["regions"] == {"eu": "down", "us": "up"}
        # after region_silence (3 intervals of 1 s) plus eu's two failures, not never
        assert down["timestamp"] / 1000 - killed_at < 3 + 2 + 2

        silent = await eu.wait_for("region.silent", region="us")
        assert silent["level"] == "warning"

        async def metrics_name_the_silence() -> bool:
            # As a scraper sees them: us's process leaving the group moves partitions a few seconds
            # after the silence began, and the new owner counts its monitors again once it has them.
            samples = await metrics_of(eu_port)
            return (
                samples.get(("uptimed_region_last_result_age_seconds", "us"), 0) >= 3
                and samples.get(("uptimed_region_last_result_age_seconds", "eu"), 99) < 3
                and samples.get(("uptimed_region_silent_monitors", "us")) == 1
            )

        await eventually(metrics_name_the_silence, timeout=15)

        # The dashboard says so.
        from uptimed.passwords import hash_password

        await conn.execute(
            "UPDATE users SET password_hash = $1 WHERE username = 'alice'", hash_password("long enough pw")
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{eu_port}", follow_redirects=False) as client:
            page = await client.get("/login")
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            signed_in = await client.post(
                "/login", data={"csrf_token": token, "username": "alice", "password": "long enough pw", "next": "/"}
            )
            assert signed_in.status_code == 303
            dashboard = (await client.get("/")).text
        assert 'data-region="us"' in dashboard and "has stopped reporting for 1 of your monitor" in dashboard
        assert "not reporting: us" in dashboard

        # us comes back: it counts again, so up needs both regions.
        us = await start_daemon(region_config(stack, "us") + site + webhook(receiver))

        async def us_counts_again() -> bool:
            # Whichever process owns the monitor once us has rejoined the group says so in the state.
            stored = await conn.fetchval(
                "SELECT state FROM monitor_state s JOIN monitors m ON m.id = s.monitor_id WHERE m.name = 'shop'"
            )
            return '"silent": []' in stored

        await eventually(us_counts_again, timeout=30)
        target.by_region["us"] = 200
        await target.wait_hits(3, region="us", status=200)
        assert len(receiver.to("/hook")) == 1, "one region up is not a majority of two"
        target.by_region["eu"] = 200
        [_, recovery] = await receiver.wait_for("/hook", count=2, timeout=30)
        assert recovery.json()["data"]["type"] == "website.up"
        state = await conn.fetchval(
            "SELECT state FROM monitor_state s JOIN monitors m ON m.id = s.monitor_id WHERE m.name = 'shop'"
        )
        assert '"silent": []' in state
    finally:
        await conn.close()
        await target.stop()


async def test_a_killed_process_hands_over_its_partitions_and_leadership_within_seven_seconds(
    stack: Stack, start_daemon
) -> None:
    target = await Target().start()
    config = stack.toml("".join(monitor(target.url(f"/m{i}"), name=f"m{i}", timeout=0.5) for i in range(6)))
    try:
        first = await start_daemon(config)
        await first.wait_for("scheduler.leader")
        second = await start_daemon(config)
        # both in the evaluator group, the first leading the scheduler and the forwarder
        await second.wait_for("evaluator.assigned")
        await target.wait_hits(12)

        first.process.kill()
        await first.process.wait()
        killed = time.monotonic()
        await second.wait_for("scheduler.leader", timeout=15)
        await second.wait_for("forwarder.leader", timeout=15)
        took_lead = time.monotonic() - killed

        def owns_all(line: dict[str, Any]) -> bool:
            return line.get("event") == "evaluator.assigned" and line.get("partitions") == [0, 1, 2]

        async def all_partitions() -> bool:
            return any(owns_all(line) for line in second.lines)

        await eventually(all_partitions, timeout=15, interval=0.05)
        took_partitions = time.monotonic() - killed
        assert took_lead <= 7.0, took_lead
        assert took_partitions <= 8.0, took_partitions
        before = Counter(target.per_path())
        await target.wait_until(lambda: all(target.per_path()[f"/m{i}"] >= before[f"/m{i}"] + 2 for i in range(6)))
    finally:
        await target.stop()
