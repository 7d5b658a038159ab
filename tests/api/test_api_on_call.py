"""``/api/v1/escalation-policies`` and acknowledging incidents through ``/api/v1/incidents``: real rows, real rules."""

from __future__ import annotations

import time
from typing import Any

from tests.api.conftest import Api, Person, monitor_body
from uptimed.channels.registry import default_registry
from uptimed.config import parse_settings
from uptimed.rules import declared
from uptimed.store import api_tokens, incidents

T0 = int(time.time() * 1000) - 600_000


async def hook(person: Person, name: str = "a") -> int:
    answer = await person.client.post(
        "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": f"https://hooks.example/{name}"}}
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def policy(*steps: tuple[Any, list[int]], **extra: Any) -> dict[str, Any]:
    return {"name": "Ops", "steps": [{"after": after, "integrations": ids} for after, ids in steps], **extra}


async def test_a_policy_is_written_read_replaced_and_used_by_a_monitor(alice: Person) -> None:
    first, second = await hook(alice, "a"), await hook(alice, "b")
    created = await alice.client.post(
        "/api/v1/escalation-policies", json=policy((0, [first]), ("5m", [second, first]), repeat_every="15m")
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert [(s["after"], s["integrations"]) for s in body["steps"]] == [(0, [first]), (300, sorted([first, second]))]
    assert body["repeat_every"] == 900 and body["monitors"] == [] and body["managed_by_config"] is False

    monitor = await alice.client.post("/api/v1/monitors", json=monitor_body(escalation_policy_id=body["id"]))
    assert monitor.status_code == 201, monitor.text
    assert monitor.json()["escalation_policy_id"] == body["id"]
    listed = (await alice.client.get("/api/v1/escalation-policies")).json()
    assert [p["monitors"] for p in listed] == [[monitor.json()["id"]]]

    replaced = await alice.client.put(f"/api/v1/escalation-policies/{body['id']}", json=policy((60, [second])))
    assert replaced.status_code == 200 and replaced.json()["steps"] == [
        {"name": "", "after": 60, "integrations": [second]}
    ]
    assert replaced.json()["repeat_every"] is None

    in_use = await alice.client.delete(f"/api/v1/escalation-policies/{body['id']}")
    assert in_use.status_code == 409 and "“shop”" in in_use.json()["detail"]
    await alice.client.put(f"/api/v1/monitors/{monitor.json()['id']}", json=monitor_body())
    assert (await alice.client.delete(f"/api/v1/escalation-policies/{body['id']}")).json() == {"success": True}
    assert (await alice.client.get(f"/api/v1/escalation-policies/{body['id']}")).status_code == 404


async def test_a_policy_names_only_the_owners_integrations_and_a_monitor_only_the_owners_policy(
    alice: Person, bob: Person
) -> None:
    mine, theirs = await hook(alice), await hook(bob)
    refused = await alice.client.post("/api/v1/escalation-policies", json=policy((0, [mine]), (60, [theirs])))
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]
    assert (problem["field"], problem["msg"]) == ("steps[1].integrations", f"you have no integration #{theirs}")

    bobs = (await bob.client.post("/api/v1/escalation-policies", json=policy((0, [theirs])))).json()
    assert (await alice.client.get(f"/api/v1/escalation-policies/{bobs['id']}")).status_code == 404
    assert (await alice.client.delete(f"/api/v1/escalation-policies/{bobs['id']}")).status_code == 404
    monitor = await alice.client.post("/api/v1/monitors", json=monitor_body(escalation_policy_id=bobs["id"]))
    assert monitor.status_code == 422
    assert monitor.json()["detail"][0]["field"] == "escalation_policy_id"


async def test_steps_come_in_order_and_each_notifies_someone(alice: Person) -> None:
    mine = await hook(alice)
    cases = [
        (policy((60, [mine]), (30, [mine])), "steps", "step 2 must come later than step 1 (30s is not after 1m)"),
        (policy((0, [])), "steps[0].integrations", "needs at least 1 item"),
        (policy((0, [mine]), repeat_every="0s"), "repeat_every", "must be at least 1 s"),
        (policy((-5, [mine])), "steps[0].after", "must not be negative"),
        ({"name": "x", "steps": []}, "steps", "needs at least 1 item"),
    ]
    for body, field, message in cases:
        answer = await alice.client.post("/api/v1/escalation-policies", json=body)
        assert answer.status_code == 422, body
        assert [(p["field"], p["msg"]) for p in answer.json()["detail"]] == [(field, message)], body


async def test_a_policy_declared_in_the_file_is_read_only(api: Api, alice: Person) -> None:
    policy_id = await api.pool.fetchval(
        "INSERT INTO escalation_policies (owner_id, config_key, name) VALUES ($1, 'ops', 'Ops') RETURNING id", alice.id
    )
    mine = await hook(alice)
    assert (
        await alice.client.put(f"/api/v1/escalation-policies/{policy_id}", json=policy((0, [mine])))
    ).status_code == 409
    assert (await alice.client.delete(f"/api/v1/escalation-policies/{policy_id}")).status_code == 409
    assert (await alice.client.get(f"/api/v1/escalation-policies/{policy_id}")).json()["managed_by_config"] is True


async def open_incident(api: Api, person: Person) -> tuple[int, int]:
    monitor = (await person.client.post("/api/v1/monitors", json=monitor_body())).json()["id"]
    async with api.pool.acquire() as conn:
        incident = await incidents.open_incident(conn, monitor, opened_at_ms=T0, cause="HTTP 503")
    return monitor, incident


async def test_acknowledging_an_incident_once_withdrawing_it_and_not_after_it_ended(
    api: Api, alice: Person, bob: Person
) -> None:
    monitor, incident = await open_incident(api, alice)
    assert (await bob.client.post(f"/api/v1/incidents/{incident}/ack")).status_code == 404

    acked = await alice.client.post(f"/api/v1/incidents/{incident}/ack")
    assert acked.status_code == 200
    body = acked.json()
    assert (body["acknowledged"], body["acknowledged_by"], body["acknowledged_via"]) == (True, "alice", "api")
    again = await alice.client.post(f"/api/v1/incidents/{incident}/ack")
    assert again.status_code == 409 and again.json()["detail"] == "this incident was acknowledged already, by alice"
    assert [i["id"] for i in (await alice.client.get("/api/v1/incidents?status=acknowledged")).json()] == [incident]
    assert (await alice.client.get("/api/v1/incidents?status=unacknowledged")).json() == []

    withdrawn = await alice.client.post(f"/api/v1/incidents/{incident}/unack")
    assert withdrawn.status_code == 200 and withdrawn.json()["acknowledged"] is False
    assert (await alice.client.post(f"/api/v1/incidents/{incident}/unack")).status_code == 409

    timeline = (await alice.client.get(f"/api/v1/incidents/{incident}/timeline")).json()
    assert [(e["kind"], e["actor"], e["via"]) for e in timeline["entries"]] == [
        ("opened", None, None),
        ("acknowledged", "alice", "api"),
        ("unacknowledged", "alice", "api"),
    ]
    assert timeline["entries"][0]["text"] == "Down: HTTP 503"

    resolved = int(time.time() * 1000)
    async with api.pool.acquire() as conn:
        await incidents.resolve_incident(conn, monitor, resolved_at_ms=resolved)
    over = await alice.client.post(f"/api/v1/incidents/{incident}/ack")
    assert over.status_code == 409 and over.json()["detail"].startswith("this incident is over")
    ended = (await alice.client.get(f"/api/v1/incidents/{incident}/timeline")).json()
    assert abs(ended["duration_s"] - (resolved - T0) / 1000) < 0.01 and ended["entries"][-1]["kind"] == "resolved"
    assert (await bob.client.get(f"/api/v1/incidents/{incident}/timeline")).status_code == 404


async def test_policies_declared_in_the_file_are_synced_with_their_monitors_and_read_only(api: Api) -> None:
    def config(steps: str, uses: str) -> str:
        return (
            f'[[monitors]]\nowner = "carol"\nkey = "shop"\nname = "shop"\ntarget = "http://a/"\n{uses}\n'
            '[[monitors]]\nowner = "carol"\nkey = "api"\nname = "api"\ntarget = "http://b/"\n'
            '[[integrations]]\nowner = "carol"\nkey = "a"\ntype = "webhook"\nconfig = { webhookUrl = "https://a.example/" }\n'
            '[[integrations]]\nowner = "carol"\nkey = "b"\ntype = "webhook"\nconfig = { webhookUrl = "https://b.example/" }\n'
            f'[[escalation_policies]]\nowner = "carol"\nkey = "ops"\nname = "Ops"\n{steps}'
        )

    two_steps = (
        '[[escalation_policies.steps]]\nafter = "0s"\nintegrations = ["a"]\n'
        '[[escalation_policies.steps]]\nname = "lead"\nafter = "10m"\nintegrations = ["a", "b"]\n'
    )
    synced = await declared.sync(
        api.pool, parse_settings(config(two_steps, 'escalation_policy = "ops"')), default_registry()
    )
    assert synced.policies == 1
    carol = await api.pool.fetchval("SELECT id FROM users WHERE username = 'carol'")
    token, _ = await api_tokens.create(api.pool, carol, "t")
    client = api.client(token)
    [policy] = (await client.get("/api/v1/escalation-policies")).json()
    ids = dict(await api.pool.fetch("SELECT config_key, id FROM integrations WHERE owner_id = $1", carol))
    shop = await api.pool.fetchval("SELECT id FROM monitors WHERE config_key = 'shop'")
    assert policy["managed_by_config"] is True and policy["monitors"] == [shop]
    assert [(s["name"], s["after"], s["integrations"]) for s in policy["steps"]] == [
        ("", 0, [ids["a"]]),
        ("lead", 600, sorted([ids["a"], ids["b"]])),
    ]
    assert (await client.delete(f"/api/v1/escalation-policies/{policy['id']}")).status_code == 409

    # Edited: one step, and the monitor no longer names it. Synced again, twice: the same outcome.
    one_step = '[[escalation_policies.steps]]\nafter = "1m"\nintegrations = ["b"]\n'
    for _ in range(2):
        await declared.sync(api.pool, parse_settings(config(one_step, "")), default_registry())
    [policy] = (await client.get("/api/v1/escalation-policies")).json()
    assert policy["monitors"] == [] and [s["integrations"] for s in policy["steps"]] == [[ids["b"]]]
