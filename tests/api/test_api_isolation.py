"""Two users: neither can read, change, toggle, test or delete the other's objects, by any route."""

from __future__ import annotations

from tests.api.conftest import Api, Person, monitor_body
from tests.api.test_api_log import deliveries
from tests.support import WebhookReceiver
from uptimed.store import api_tokens, incidents


async def test_another_users_objects_answer_404_by_every_route_and_stay_unchanged(
    api: Api, alice: Person, bob: Person, receiver: WebhookReceiver
) -> None:
    integration = (
        await alice.client.post(
            "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": receiver.url("/alice")}}
        )
    ).json()
    monitor = (await alice.client.post("/api/v1/monitors", json=monitor_body())).json()
    (entry,) = await deliveries(api, alice, monitor["id"], integration["id"], 1)
    async with api.pool.acquire() as conn:
        incident = await incidents.open_incident(conn, monitor["id"], opened_at_ms=1_700_000_000_000, cause="x")
    secret, token = await api_tokens.create(api.pool, alice.id, "second")
    i, m = integration["id"], monitor["id"]

    attempts = [
        ("GET", f"/api/v1/integrations/{i}", None),
        ("PUT", f"/api/v1/integrations/{i}", {"config": {"webhookUrl": receiver.url("/bob")}}),
        ("PATCH", f"/api/v1/integrations/{i}/toggle", None),
        ("POST", f"/api/v1/integrations/{i}/test", None),
        ("DELETE", f"/api/v1/integrations/{i}", None),
        ("GET", f"/api/v1/monitors/{m}", None),
        ("GET", f"/api/v1/monitors/{m}/checks", None),
        ("PUT", f"/api/v1/monitors/{m}", monitor_body(name="bob's now")),
        ("PATCH", f"/api/v1/monitors/{m}/toggle", None),
        ("DELETE", f"/api/v1/monitors/{m}", None),
        ("GET", f"/api/v1/notifications/{entry}", None),
        ("GET", f"/api/v1/incidents/{incident}", None),
        ("DELETE", f"/api/v1/tokens/{token.id}", None),
    ]
    for method, path, body in attempts:
        response = await bob.client.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["detail"].endswith("not found")
        # The same answer as for an id that does not exist at all: nothing tells the two apart.
        missing = await bob.client.request(
            method,
            path.replace(f"/{i}", "/999999")
            .replace(f"/{m}", "/999998")
            .replace(f"/{entry}", "/999997")
            .replace(f"/{incident}", "/999996")
            .replace(f"/{token.id}", "/999995"),
            json=body,
        )
        assert missing.json() == response.json()

    # Bob's lists and filters show nothing of Alice's.
    assert (await bob.client.get("/api/v1/integrations")).json() == []
    assert (await bob.client.get("/api/v1/monitors")).json() == []
    assert (await bob.client.get("/api/v1/notifications", params={"integration": i})).json() == []
    assert (await bob.client.get("/api/v1/incidents", params={"monitor": m})).json() == []
    assert token.id not in [t["id"] for t in (await bob.client.get("/api/v1/tokens")).json()]

    # Alice's objects are as she left them, and no test notification went out.
    unchanged = (await alice.client.get(f"/api/v1/integrations/{i}")).json()
    assert unchanged == {**integration, "lastDelivery": unchanged["lastDelivery"]}  # her own delivery is its last
    assert unchanged["lastDelivery"]["status"] == "PENDING"
    shown = (await alice.client.get(f"/api/v1/monitors/{m}")).json()
    assert (shown["name"], shown["enabled"]) == ("shop", True)
    assert receiver.requests == []
    assert (await api_tokens.authenticate(api.pool, secret)).id == alice.id  # not revoked


async def test_lists_hold_only_the_callers_objects(alice: Person, bob: Person) -> None:
    mine = (await alice.client.post("/api/v1/monitors", json=monitor_body(name="alice's"))).json()
    (await bob.client.post("/api/v1/monitors", json=monitor_body(name="bob's"))).json()

    assert [x["id"] for x in (await alice.client.get("/api/v1/monitors")).json()] == [mine["id"]]
