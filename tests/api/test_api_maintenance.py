"""``/api/v1/maintenance``, monitor filters and public badges through the API, over the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import Api, Person, monitor_body


async def test_windows_are_planned_read_changed_and_deleted_by_their_owner_only(
    api: Api, alice: Person, bob: Person
) -> None:
    shop = (await alice.client.post("/api/v1/monitors", json=monitor_body(tags=["eu"]))).json()
    now = datetime.now(UTC)
    created = await alice.client.post(
        "/api/v1/maintenance",
        json={
            "name": "deploy",
            "start": (now - timedelta(minutes=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
            "monitor_ids": [shop["id"]],
        },
    )
    assert created.status_code == 201
    window = created.json()
    assert window["ongoing"] is not None and window["next"] is None and window["managed_by_config"] is False
    # The monitor says so, until when.
    shown = (await alice.client.get(f"/api/v1/monitors/{shop['id']}")).json()
    assert shown["maintenance"]["name"] == "deploy" and shown["maintenance"]["window_id"] == window["id"]

    weekly = await alice.client.put(
        f"/api/v1/maintenance/{window['id']}",
        json={"name": "backups", "days": ["sun"], "at": "02:00", "duration": "2h", "time_zone": "Europe/Berlin",
              "tags": ["eu"]},
    )  # fmt: skip
    assert weekly.status_code == 200
    assert weekly.json()["described"] == "Sun 02:00 for 2h (Europe/Berlin)"
    assert weekly.json()["next"]["start"] is not None

    assert (await bob.client.get(f"/api/v1/maintenance/{window['id']}")).status_code == 404
    assert (await bob.client.get("/api/v1/maintenance")).json() == []
    strangers = await bob.client.post(
        "/api/v1/maintenance", json={"name": "x", "cron": "0 2 * * *", "duration": "1h", "monitor_ids": [shop["id"]]}
    )
    assert strangers.status_code == 422
    assert strangers.json()["detail"][0]["field"] == "monitor_ids"

    refused = await alice.client.post("/api/v1/maintenance", json={"name": "x", "cron": "0 2 * *", "tags": ["eu"]})
    assert refused.status_code == 422
    assert {p["msg"] for p in refused.json()["detail"]} == {
        "needs 5 fields: minute hour day-of-month month day-of-week"
    }
    assert (await alice.client.delete(f"/api/v1/maintenance/{window['id']}")).json() == {"success": True}
    assert (await alice.client.get("/api/v1/maintenance")).json() == []


async def test_config_declared_windows_answer_409(api: Api, alice: Person) -> None:
    declared = await api.pool.fetchval(
        "INSERT INTO maintenance_windows (owner_id, config_key, name, cron, duration_s, all_monitors)"
        " VALUES ($1, 'nightly', 'nightly', '0 2 * * *', 3600, true) RETURNING id",
        alice.id,
    )
    assert (await alice.client.get(f"/api/v1/maintenance/{declared}")).json()["managed_by_config"] is True
    answer = await alice.client.delete(f"/api/v1/maintenance/{declared}")
    assert answer.status_code == 409 and "config file" in answer.json()["detail"]


async def test_the_list_filters_by_tag_status_and_name_or_target(api: Api, alice: Person) -> None:
    for name, target, tags in (
        ("Shop", "https://shop.example/", ["eu", "payments"]),
        ("Blog", "https://blog.example/", ["us"]),
        ("Search 100%_off", "https://search.example/", ["eu"]),
    ):
        await alice.client.post("/api/v1/monitors", json=monitor_body(name=name, target=target, tags=tags))
    paused = (await alice.client.get("/api/v1/monitors", params={"q": "blog"})).json()
    assert [m["name"] for m in paused] == ["Blog"]
    await alice.client.patch(f"/api/v1/monitors/{paused[0]['id']}/toggle")

    async def names(**params: str) -> list[str]:
        answer = await alice.client.get("/api/v1/monitors", params=params)
        assert answer.status_code == 200, answer.text
        return [m["name"] for m in answer.json()]

    assert await names(tag="eu") == ["Shop", "Search 100%_off"]
    assert await names(tag="payments") == ["Shop"]
    assert await names(status="paused") == ["Blog"]
    assert await names(status="unknown", tag="eu") == ["Shop", "Search 100%_off"]
    assert await names(q="SHOP.EXAMPLE") == ["Shop"]  # the target too, in any case
    assert await names(q="%_") == ["Search 100%_off"]  # no wildcards: the text itself
    assert (await alice.client.get("/api/v1/monitors", params={"status": "sideways"})).status_code == 422


async def test_badges_are_opt_in_show_one_figure_each_and_go_away(api: Api, alice: Person) -> None:
    shop = (
        await alice.client.post("/api/v1/monitors", json=monitor_body(target="https://secret-host.example/x"))
    ).json()
    assert (await alice.client.get(f"/api/v1/monitors/{shop['id']}/badges")).status_code == 404
    badges = (await alice.client.put(f"/api/v1/monitors/{shop['id']}/badges")).json()
    # The address names a random key (16 characters of 12 random bytes), not the monitor.
    _, badge, key, name = badges["status"].split("/")
    assert (badge, name, len(key)) == ("badge", "status.svg", 16) and key != str(shop["id"])

    public = api.client()  # no token, no cookie
    status = await public.get(badges["status"])
    assert status.status_code == 200
    assert status.headers["content-type"] == "image/svg+xml"
    assert status.headers["cache-control"] == "public, max-age=60"
    assert "status: unknown" in status.text
    for leak in ("shop", "secret-host", "alice"):
        assert leak not in status.text.lower()
    uptime = await public.get(badges["uptime"], params={"period": "7d"})
    assert "uptime 7d: —" in uptime.text
    assert "response: —" in (await public.get(badges["response"])).text

    again = (await alice.client.put(f"/api/v1/monitors/{shop['id']}/badges")).json()
    assert again["status"] != badges["status"]  # a new key: the old address is gone
    assert (await public.get(badges["status"])).status_code == 404
    await alice.client.delete(f"/api/v1/monitors/{shop['id']}/badges")
    assert (await public.get(again["status"])).status_code == 404
