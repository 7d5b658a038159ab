"""Escalation timers and acknowledgements in the evaluator, against the real Kafka and PostgreSQL.

Results are fed by hand (as in test_evaluator.py) and evaluators started and
stopped at will: a step due while no evaluator runs fires once when one
starts; an acknowledgement stored while none runs is announced by the next;
two evaluators in the group never both send a step.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

from tests.evaluate.test_evaluator import (  # noqa: F401 - fixtures
    Feed,
    Running,
    evaluators,
    events,
    feed,
    kafka_producer,
    make_monitors,
    now_ms,
    result,
)
from tests.evaluate.test_evaluator_maintenance import one_off_window
from tests.support import EventReader, eventually
from uptimed.escalation_policy import PolicyFields
from uptimed.evaluate import evaluator as evaluator_module
from uptimed.store import escalation_policies, incidents

pytestmark = pytest.mark.kafka


async def monitor_with_policy(
    pool: asyncpg.Pool, evaluators: Running, delays: list[float], **policy: object
) -> tuple[int, list[int]]:
    """A monitor (1 s, down at the first failure) whose policy's step n notifies integration n.

    Returned once the evaluators' monitor feed has the policy: the change reaches it by a notification.
    """
    (mid,) = await make_monitors(pool, 1)
    owner = await pool.fetchval("SELECT owner_id FROM monitors WHERE id = $1", mid)
    hooks = [
        await pool.fetchval(
            "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', $2) RETURNING id",
            owner,
            {"webhookUrl": f"https://hooks.example/{n}"},
        )
        for n in range(len(delays))
    ]
    fields = PolicyFields.model_validate(
        {
            "name": "ops",
            "steps": [{"after": d, "integrations": [h]} for d, h in zip(delays, hooks, strict=True)],
            **policy,
        }
    )
    stored = await escalation_policies.create(pool, owner, fields)
    await pool.execute("UPDATE monitors SET escalation_policy_id = $1 WHERE id = $2", stored.id, mid)

    async def fed() -> bool:
        known = evaluators.feed.get(mid)
        return known is not None and known.escalation_policy_id == stored.id

    await eventually(fed)
    return mid, hooks


async def test_a_step_due_while_no_evaluator_ran_fires_once_when_one_starts(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    mid, hooks = await monitor_with_policy(pool, evaluators, [0, 2, 30])
    first = evaluators.start()
    await feed.send([result(mid, False, now_ms())])
    [down] = await events.wait_for("website.down")
    assert down["integrationIds"] == [hooks[0]] and down["escalation"]["step"] == 1
    await evaluators.stop(first)
    await asyncio.sleep(2.5)  # step 2 falls due while nobody owns the monitor
    evaluators.start()
    evaluators.start()  # two of them share the partitions now: still one step 2
    [step] = await events.wait_for("incident.escalated", timeout=30)
    assert step["integrationIds"] == [hooks[1]] and step["escalation"]["step"] == 2
    assert step["timestamp"] >= down["timestamp"] + 2_000
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM incident_events WHERE incident_id = $1 AND kind = 'escalated'", down["incidentId"]
        )
        == 2
    )
    await asyncio.sleep(1.0)  # anything doubled would have arrived by now
    # One step 2. Its event may be published twice when the partition moves between storing and marking it
    # published (the next owner publishes the outbox again): the same event id, which the notifier records once.
    assert len({e["eventId"] for e in events.of("incident.escalated")}) == 1
    assert not evaluators.crashes


async def test_an_outage_that_outlasts_a_maintenance_window_pages_the_policy_from_its_first_step_at_the_end(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    mid, hooks = await monitor_with_policy(pool, evaluators, [0, 2])
    start = now_ms()
    end = start + 3_000
    await one_off_window(pool, start - 1_000, end, [mid])
    evaluators.start()
    await feed.send([result(mid, False, start)])  # down inside the window; step 2 would be due in it too
    [down] = await events.wait_for("website.down", timeout=20)
    assert down["timestamp"] == end and down["reason"] == "still down after maintenance: status: HTTP 500"
    assert down["integrationIds"] == [hooks[0]] and down["escalation"]["step"] == 1
    [step] = await events.wait_for("incident.escalated", timeout=20)
    assert step["integrationIds"] == [hooks[1]] and step["escalation"]["step"] == 2
    assert step["timestamp"] >= end + 2_000  # counted from the window's end, not from the outage's start
    assert [e["type"] for e in events.events] == ["website.down", "incident.escalated"]
    assert not evaluators.crashes


async def test_an_acknowledgement_stored_while_no_evaluator_ran_is_announced_by_the_next_and_stops_the_steps(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    mid, hooks = await monitor_with_policy(pool, evaluators, [0, 1, 4])
    first = evaluators.start()
    await feed.send([result(mid, False, now_ms())])
    [down] = await events.wait_for("website.down")
    await events.wait_for("incident.escalated")  # step 2
    await evaluators.stop(first)
    assert await incidents.acknowledge(pool, down["incidentId"], by="alice", via="page")
    evaluators.start()
    [ack] = await events.wait_for("incident.acknowledged", timeout=30)
    assert ack["acknowledgedBy"] == "alice" and ack["integrationIds"] == sorted(hooks[:2])
    assert ack["reason"] == "acknowledged by alice on its page"

    async def applied() -> bool:
        row = await pool.fetchrow(
            "SELECT ack_applied_at = acknowledged_at AS applied FROM incidents WHERE id = $1", down["incidentId"]
        )
        return bool(row["applied"])

    await eventually(applied, timeout=10)
    # Withdrawn: step 3 goes out (at once if it fell due meanwhile), to its integration only.
    assert await incidents.unacknowledge(pool, down["incidentId"], by="alice", via="api")
    [_, third] = await events.wait_for("incident.escalated", count=2, timeout=30)
    assert third["escalation"]["step"] == 3 and third["integrationIds"] == [hooks[2]]
    assert len(events.of("incident.acknowledged")) == 1
    assert not evaluators.crashes


async def test_a_policy_edited_or_chosen_while_the_evaluator_runs_applies_to_the_next_incident(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The daemon reads a policy again every 5 s; half a second keeps this test short, the mechanism is the same.
    monkeypatch.setattr(evaluator_module, "POLICY_CACHE_S", 0.5)
    mid, [first_hook] = await monitor_with_policy(pool, evaluators, [0])
    owner, policy_id = await pool.fetchrow("SELECT owner_id, escalation_policy_id FROM monitors WHERE id = $1", mid)
    second_hook = await pool.fetchval(
        "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', $2) RETURNING id",
        owner,
        {"webhookUrl": "https://hooks.example/second"},
    )
    evaluators.start()
    incidents_seen = 0

    async def next_incident() -> dict[str, Any]:
        """Down then up again; the down event (whom the policy's first step notified)."""
        nonlocal incidents_seen
        incidents_seen += 1
        await feed.send([result(mid, False, now_ms())])
        down = (await events.wait_for("website.down", count=incidents_seen))[-1]
        await feed.send([result(mid, True, now_ms())])
        await events.wait_for("website.up", count=incidents_seen)
        return down

    assert (await next_incident())["integrationIds"] == [first_hook]
    step = {"after": 0, "integrations": [second_hook]}
    edited = await escalation_policies.update_owned(
        pool, owner, policy_id, PolicyFields.model_validate({"name": "ops", "steps": [step]})
    )
    assert edited is not None
    since = time.monotonic()
    while (down := await next_incident())["integrationIds"] != [second_hook]:
        assert down["integrationIds"] == [first_hook]  # the old policy, until it is read again
        assert time.monotonic() - since < 0.5 + 5, "the edited policy was not read again"

    # Another policy chosen for the monitor: it arrives with the monitor's notification, for the very next incident.
    both = {"after": 0, "integrations": [first_hook, second_hook]}
    other = await escalation_policies.create(pool, owner, PolicyFields.model_validate({"name": "b", "steps": [both]}))
    await pool.execute("UPDATE monitors SET escalation_policy_id = $1 WHERE id = $2", other.id, mid)

    async def switched() -> bool:
        monitor = evaluators.feed.get(mid)
        return monitor is not None and monitor.escalation_policy_id == other.id

    await eventually(switched, timeout=10)
    assert sorted((await next_incident())["integrationIds"]) == sorted([first_hook, second_hook])
    # And none: every routed integration again, as without on call.
    await pool.execute("UPDATE monitors SET escalation_policy_id = NULL WHERE id = $1", mid)

    async def cleared() -> bool:
        monitor = evaluators.feed.get(mid)
        return monitor is not None and monitor.escalation_policy_id is None

    await eventually(cleared, timeout=10)
    assert (await next_incident()).get("integrationIds") is None
    assert not evaluators.crashes
