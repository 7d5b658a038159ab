"""``/api/v1/notifications`` and ``/api/v1/incidents`` over rows the pipeline writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import Api, Person, monitor_body
from uptimed.event import EventType, MonitorEvent
from uptimed.store import incidents, notification_log
from uptimed.store.notification_log import Intent


async def deliveries(api: Api, person: Person, monitor_id: int, integration_id: int, count: int) -> list[int]:
    """``count`` events fanned out to the integration, as the notifier records them; their log ids, oldest first."""
    events = [
        MonitorEvent(type=EventType.DOWN, websiteId=monitor_id, userId=person.id, url="https://shop.example/")
        for _ in range(count)
    ]
    async with api.pool.acquire() as conn:
        await notification_log.add_intents(conn, [Intent(e, integration_id) for e in events])
    return [
        r["id"]
        for r in await api.pool.fetch(
            "SELECT id FROM notification_log WHERE integration_id = $1 ORDER BY id", integration_id
        )
    ]


async def attempt(api: Api, delivery_id: int, outcome: str, error: str = "") -> None:
    """One attempt at a row as the dispatcher makes it: claimed, started, then its outcome."""
    await api.pool.execute("UPDATE notification_log SET next_attempt_at = now() WHERE id = $1", delivery_id)
    claimed = await notification_log.claim_due(api.pool, owner="test", limit=100, lease_s=30)
    assert delivery_id in {d.id for d in claimed}
    number = await notification_log.start_attempt(api.pool, delivery_id, owner="test", lease_s=30)
    assert number is not None
    if outcome == "sent":
        await notification_log.mark_sent(api.pool, delivery_id, owner="test", attempt=number)
    elif outcome == "retrying":
        await notification_log.mark_retrying(
            api.pool, delivery_id, owner="test", attempt=number, delay_s=0, error=error
        )
    else:
        await notification_log.mark_failed(api.pool, delivery_id, owner="test", attempt=number, error=error)
    await api.pool.execute(  # give back what the claim took along, untouched
        "UPDATE notification_log SET lease_owner = NULL, next_attempt_at = created_at WHERE lease_owner = 'test'"
    )


async def setup(api: Api, person: Person) -> tuple[int, int]:
    monitor = (await person.client.post("/api/v1/monitors", json=monitor_body())).json()["id"]
    integration = (
        await person.client.post("/api/v1/integrations", json={"type": "email", "config": {"email": "a@x.org"}})
    ).json()["id"]
    return monitor, integration


async def test_notifications_newest_first_with_attempts_and_errors(api: Api, alice: Person) -> None:
    monitor, integration = await setup(api, alice)
    sent, failed, pending = await deliveries(api, alice, monitor, integration, 3)
    await attempt(api, sent, "sent")
    await attempt(api, failed, "retrying", "HTTP 503: busy")
    await attempt(api, failed, "failed", "HTTP 410: gone")

    listed = (await alice.client.get("/api/v1/notifications")).json()

    assert [n["id"] for n in listed] == [pending, failed, sent]
    by_id = {n["id"]: n for n in listed}
    assert (by_id[sent]["status"], by_id[sent]["attempts"], by_id[sent]["error"]) == ("SENT", 1, None)
    assert by_id[sent]["sent_at"] is not None
    assert (by_id[failed]["status"], by_id[failed]["attempts"], by_id[failed]["error"]) == (
        "FAILED",
        2,
        "HTTP 410: gone",
    )
    assert by_id[pending]["status"] == "PENDING"
    assert by_id[pending]["next_attempt_at"] is not None
    assert by_id[pending]["integration_type"] == "email"
    assert by_id[pending]["event_type"] == "website.down"
    assert by_id[pending]["monitor_id"] == monitor
    assert (await alice.client.get(f"/api/v1/notifications/{failed}")).json() == by_id[failed]


async def test_notifications_filter_by_status_integration_and_time(api: Api, alice: Person) -> None:
    monitor, first = await setup(api, alice)
    second = (
        await alice.client.post("/api/v1/integrations", json={"type": "email", "config": {"email": "b@x.org"}})
    ).json()["id"]
    a, b = await deliveries(api, alice, monitor, first, 2)
    (c,) = await deliveries(api, alice, monitor, second, 1)
    await attempt(api, b, "sent")
    await api.pool.execute("UPDATE notification_log SET created_at = now() - interval '2 days' WHERE id = $1", a)

    def ids(response) -> list[int]:
        assert response.status_code == 200, response.text
        return [n["id"] for n in response.json()]

    assert ids(await alice.client.get("/api/v1/notifications", params={"status": "SENT"})) == [b]
    assert ids(await alice.client.get("/api/v1/notifications", params={"integration": second})) == [c]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert ids(await alice.client.get("/api/v1/notifications", params={"since": since})) == [c, b]
    bad = await alice.client.get("/api/v1/notifications", params={"status": "LOST"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "status"


async def test_notifications_page_by_cursor(api: Api, alice: Person) -> None:
    monitor, integration = await setup(api, alice)
    ids = await deliveries(api, alice, monitor, integration, 5)

    seen: list[int] = []
    params: dict[str, object] = {"limit": 2}
    for _ in range(5):
        page = await alice.client.get("/api/v1/notifications", params=params)
        seen += [n["id"] for n in page.json()]
        if "X-Next-Cursor" not in page.headers:
            break
        params["cursor"] = page.headers["X-Next-Cursor"]

    assert seen == ids[::-1]


async def test_incidents_newest_first_open_filter_and_duration(api: Api, alice: Person) -> None:
    monitor, _ = await setup(api, alice)
    base = 1_700_000_000_000
    async with api.pool.acquire() as conn:
        old = await incidents.open_incident(conn, monitor, opened_at_ms=base, cause="HTTP 503")
        await incidents.resolve_incident(conn, monitor, resolved_at_ms=base + 90_000)
        current = await incidents.open_incident(conn, monitor, opened_at_ms=base + 600_000, cause="timeout")

    listed = (await alice.client.get("/api/v1/incidents")).json()
    still_open = (await alice.client.get("/api/v1/incidents", params={"open": True})).json()
    of_monitor = (await alice.client.get("/api/v1/incidents", params={"monitor": monitor, "limit": 1})).json()

    assert [i["id"] for i in listed] == [current, old]
    assert listed[1]["duration_s"] == 90.0
    assert listed[1]["cause"] == "HTTP 503"
    assert listed[1]["monitor_name"] == "shop"
    assert listed[0]["resolved_at"] is None and listed[0]["duration_s"] is None
    assert [i["id"] for i in still_open] == [current]
    assert [i["id"] for i in of_monitor] == [current]
    assert (await alice.client.get(f"/api/v1/incidents/{old}")).json() == listed[1]
    assert (await alice.client.get("/api/v1/incidents/999999")).status_code == 404
