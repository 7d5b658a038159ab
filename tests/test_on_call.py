"""On call, end to end (issue 17): escalation steps on time, acknowledgement, failover between steps.

Each test runs the real ``uptimed run`` (one or two processes) against the
session's PostgreSQL, Redis and Kafka, with a local target that fails and a
local webhook receiver standing for each integration. The escalation policy
comes from the config file, as an operator would write it; acknowledging goes
through the HTTP API. What the people on call would see is asserted: who is
paged, when (each step within a second of its time), exactly once, and who
hears of the acknowledgement and the recovery.
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

from tests.support import DaemonProcess, Request, Stack, Target, WebhookReceiver, eventually, to_toml
from tests.test_monitoring import monitor
from uptimed.bus.kafka import partition_of
from uptimed.store import api_tokens, users

pytestmark = pytest.mark.kafka

STEP_LATENESS_S = 1.0
"""Each step reaches its integrations within this of its time (the issue's bound)."""
FAILOVER_S = 8.0
"""A killed process's partitions move within the consumer session timeout (6 s) and a rebalance (README: ~7 s)."""
PATHS = ("/s1", "/s2a", "/s2b", "/s3")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = await Target().start()
    yield server
    await server.stop()


def on_call_config(
    stack: Stack, target: Target, receiver: WebhookReceiver, steps: list[tuple[float, list[str]]], **fields: Any
) -> str:
    """alice's monitor (checked every second, down at the first failure) under the policy ``steps``."""
    sections = stack.sections()
    sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": 0}
    sections["notify"] = {"delivery_timeout": 5, "backoff_initial": 0.5}
    text = to_toml(sections) + "\n"
    text += monitor(
        target.url("/shop"),
        name="shop",
        failure_threshold=1,
        success_threshold=1,
        escalation_policy="ops",
        **fields,
    )
    for path in PATHS:
        key = path.strip("/")
        text += (
            f'[[integrations]]\nowner = "alice"\nkey = "{key}"\ntype = "webhook"\n'
            f'config = {{ webhookUrl = "{receiver.url(path)}" }}\n'
        )
    text += '[[escalation_policies]]\nowner = "alice"\nkey = "ops"\nname = "Ops on call"\n'
    for number, (after, keys) in enumerate(steps, start=1):
        names = ", ".join(f'"{k}"' for k in keys)
        text += (
            f'[[escalation_policies.steps]]\nname = "level {number}"\nafter = "{after}s"\nintegrations = [{names}]\n'
        )
    return text


class Clock:
    """Wall-clock milliseconds of a receiver's requests (it stamps them with the event loop's clock)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.offset = time.time() - loop.time()

    def ms(self, request: Request) -> float:
        return (request.at + self.offset) * 1000


def kinds(requests: list[Request]) -> Counter[str]:
    """``website.down``, ``incident.escalated#2``, ... per request."""
    out: Counter[str] = Counter()
    for request in requests:
        data = request.json()["data"]
        kind = data["type"] + ("/reminder" if data.get("reminder") else "")
        if data.get("escalation"):
            kind += f"#{data['escalation']['step']}"
        out[kind] += 1
    return out


async def arrived(receiver: WebhookReceiver, path: str, kind: str, *, timeout: float = 15.0) -> None:
    """Wait until ``path`` received a notification of ``kind`` (as :func:`kinds` names them)."""

    async def found() -> bool:
        return kinds(receiver.to(path))[kind] >= 1

    await eventually(found, timeout=timeout)


async def incident_opened_ms(receiver: WebhookReceiver) -> tuple[int, int]:
    """The incident's id and start, from step 1's alert."""
    [first] = await receiver.wait_for("/s1", timeout=30)
    data = first.json()["data"]
    assert data["type"] == "website.down" and data["escalation"]["step"] == 1
    return data["incidentId"], data["timestamp"]


async def test_a_three_step_policy_pages_each_step_once_on_time_and_the_recovery_reaches_everyone(
    topics: Stack, target: Target, receiver: WebhookReceiver, start_daemon
) -> None:
    steps = [(0, ["s1"]), (3, ["s2a", "s2b"]), (6, ["s3"])]
    target.status = 500
    clock = Clock()
    daemon = await start_daemon(on_call_config(topics, target, receiver, steps))
    incident, opened = await incident_opened_ms(receiver)
    for after, keys in steps:
        for key in keys:
            [request] = await receiver.wait_for(f"/{key}", timeout=30)
            late_s = (clock.ms(request) - (opened + after * 1000)) / 1000
            assert 0 <= late_s <= STEP_LATENESS_S, (key, late_s)
            data = request.json()["data"]
            assert data["incidentId"] == incident and data["escalation"]["step"] == steps.index((after, keys)) + 1
            assert request.headers["X-Uptimed-Attempt"] == "1"

    target.status = 200
    for path in PATHS:
        await receiver.wait_for(path, 2, timeout=30)
    assert kinds(receiver.to("/s1")) == {"website.down#1": 1, "website.up": 1}
    assert kinds(receiver.to("/s2a")) == kinds(receiver.to("/s2b")) == {"incident.escalated#2": 1, "website.up": 1}
    assert kinds(receiver.to("/s3")) == {"incident.escalated#3": 1, "website.up": 1}
    ups = [r.json()["data"] for path in PATHS for r in receiver.to(path) if r.json()["event"] == "website.up"]
    assert {up["eventId"] for up in ups} == {ups[0]["eventId"]} and ups[0]["integrationIds"] is not None
    assert not daemon.events("evaluator.commit_failed")


async def api_token(stack: Stack) -> str:
    conn = await asyncpg.connect(stack.dsn)
    try:
        alice = await users.get_by_username(conn, "alice")
        assert alice is not None
        token, _ = await api_tokens.create(conn, alice.id, "on call test")
        return token
    finally:
        await conn.close()


async def test_acknowledging_after_step_two_stops_step_three_and_the_reminders_and_tells_who_was_paged(
    topics: Stack, target: Target, receiver: WebhookReceiver, start_daemon
) -> None:
    steps = [(0, ["s1"]), (3, ["s2a", "s2b"]), (8, ["s3"])]
    target.status = 500
    daemon = await start_daemon(on_call_config(topics, target, receiver, steps, repeat_interval=2))
    listening = await daemon.wait_for("api.listening")
    token = await api_token(topics)
    incident, opened = await incident_opened_ms(receiver)
    await receiver.wait_for("/s2b", timeout=30)

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{listening['port']}", headers={"Authorization": f"Bearer {token}"}
    ) as api:
        answer = await api.post(f"/api/v1/incidents/{incident}/ack")
        assert answer.status_code == 200, answer.text
        acked = answer.json()
        assert (acked["acknowledged"], acked["acknowledged_by"], acked["acknowledged_via"]) == (True, "alice", "api")
        acked_ms = time.time() * 1000
        assert (await api.post(f"/api/v1/incidents/{incident}/ack")).status_code == 409  # once

        # Everyone paged so far hears who took it; nobody else.
        for path in ("/s1", "/s2a", "/s2b"):
            await arrived(receiver, path, "incident.acknowledged")

        conn = await asyncpg.connect(topics.dsn)
        try:
            # The evaluator acted on it and keeps no timer for the incident: nothing more is due.
            async def settled() -> bool:
                row = await conn.fetchrow(
                    "SELECT i.ack_applied_at = i.acknowledged_at AS applied, s.wake_at FROM incidents i"
                    " JOIN monitor_state s USING (monitor_id) WHERE i.id = $1",
                    incident,
                )
                return bool(row["applied"]) and row["wake_at"] is None

            await eventually(settled, timeout=15)
        finally:
            await conn.close()
        # Waiting for something not to happen: past step 3's time and a reminder's, with a margin.
        await asyncio.sleep(max(0.0, (opened + 8_000 + 2_500 - time.time() * 1000) / 1000))
        assert receiver.to("/s3") == []
        after = [r.json()["data"] for r in receiver.requests if r.json()["data"]["timestamp"] > acked_ms]
        assert all(d["type"] == "incident.acknowledged" for d in after), after
        ack = receiver.to("/s1")[-1].json()
        assert ack["event"] == "incident.acknowledged" and ack["status"] == "acknowledged"
        assert ack["data"]["acknowledgedBy"] == "alice" and ack["data"]["integrationIds"] == sorted(
            ack["data"]["integrationIds"]
        )
        reminders = [r for r in receiver.to("/s1") if r.json()["data"].get("reminder")]
        assert reminders and all(r.json()["data"]["timestamp"] < acked_ms for r in reminders)

        # The timeline tells it in order.
        timeline = (await api.get(f"/api/v1/incidents/{incident}/timeline")).json()
        entries = timeline["entries"]
        assert entries[0]["kind"] == "opened"
        assert [e["step"] for e in entries if e["kind"] == "escalated"] == [1, 2]
        [acknowledged] = [e for e in entries if e["kind"] == "acknowledged"]
        assert (acknowledged["actor"], acknowledged["via"]) == ("alice", "api")
        notified = [e for e in entries if e["kind"] == "notified"]
        assert {(e["integration_id"], e["notification"]) for e in notified} >= {
            (e["integration_id"], "acknowledged") for e in notified if e["step"] == 2
        }
        listed = (await api.get("/api/v1/incidents", params={"status": "acknowledged"})).json()
        assert [i["id"] for i in listed] == [incident]

        # Recovery: everyone reached hears it, acknowledged or not.
        target.status = 200
        for path in ("/s1", "/s2a", "/s2b"):
            await arrived(receiver, path, "website.up", timeout=30)
        assert receiver.to("/s3") == []
        for path in ("/s1", "/s2a", "/s2b"):
            assert kinds(receiver.to(path))["incident.acknowledged"] == 1


def owned_partitions(daemon: DaemonProcess) -> set[int]:
    assigned = daemon.events("evaluator.assigned")
    return set(assigned[-1]["partitions"]) if assigned else set()


async def test_the_process_owning_an_incident_killed_between_two_steps_the_next_fires_once_within_failover(
    topics: Stack, target: Target, receiver: WebhookReceiver, start_daemon
) -> None:
    steps = [(0, ["s1"]), (5, ["s2a", "s2b"]), (15, ["s3"])]
    config = on_call_config(topics, target, receiver, steps)
    first = await start_daemon(config)
    second = await start_daemon(config)
    conn = await asyncpg.connect(topics.dsn)
    try:
        monitor_id = await conn.fetchval("SELECT id FROM monitors WHERE name = 'shop'")
        partition = partition_of(monitor_id, 3)

        async def shared() -> bool:  # the group settled: the two processes own all three partitions between them
            mine, theirs = owned_partitions(first), owned_partitions(second)
            return mine | theirs == {0, 1, 2} and not mine & theirs and bool(mine) and bool(theirs)

        await eventually(shared, timeout=45)
        owner, survivor = (first, second) if partition in owned_partitions(first) else (second, first)
        clock = Clock()
        target.status = 500
        incident, opened = await incident_opened_ms(receiver)

        async def step_one_sent() -> bool:
            return (
                await conn.fetchval(
                    "SELECT count(*) FROM notification_log WHERE incident_id = $1 AND status = 'SENT'", incident
                )
                == 1
            )

        await eventually(step_one_sent, timeout=15)  # nothing of step 1 in flight: its delivery is done
        owner.process.kill()
        await owner.process.wait()
        killed_ms = time.time() * 1000
        assert killed_ms < opened + 5_000, "the owner must die before step 2 is due"

        for key in ("s2a", "s2b"):
            [request] = await receiver.wait_for(f"/{key}", timeout=30)
            due = opened + 5_000
            arrived = clock.ms(request)
            assert due <= arrived <= max(due, killed_ms + FAILOVER_S * 1000) + STEP_LATENESS_S * 1000, (
                key,
                (arrived - killed_ms) / 1000,
            )
        [third] = await receiver.wait_for("/s3", timeout=40)
        late_s = (clock.ms(third) - (opened + 15_000)) / 1000
        assert 0 <= late_s <= STEP_LATENESS_S, late_s  # the survivor owns the timer by then: on time

        target.status = 200
        for path in PATHS:
            await receiver.wait_for(path, 2, timeout=30)
        for path in PATHS:  # each step reached each of its integrations once, and the recovery once
            assert len(receiver.to(path)) == 2, (path, kinds(receiver.to(path)))
        escalated = await conn.fetch(
            "SELECT detail->>'step' AS step, count(*) FROM incident_events WHERE incident_id = $1"
            " AND kind = 'escalated' GROUP BY 1 ORDER BY 1",
            incident,
        )
        assert [(r["step"], r["count"]) for r in escalated] == [("1", 1), ("2", 1), ("3", 1)]
        fired = [
            line["event_id"] for line in survivor.events("monitor.changed") if line.get("type") == "incident.escalated"
        ]
        assert len(fired) == len(set(fired)) == 2  # the survivor fired steps 2 and 3, each once
    finally:
        await conn.close()
