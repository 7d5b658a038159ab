"""``/api/v1/monitors``: CRUD, status and uptime from real rows, checks by cursor, config monitors read-only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import REGIONS, Api, Person, config_monitor, monitor_body
from uptimed.check import CheckResult, CheckStatus
from uptimed.evaluate.state import Incident, MonitorState, MonitorStatus
from uptimed.store import checks, monitor_state

NOW = datetime.now(UTC).replace(microsecond=0)


async def add_checks(api: Api, monitor_id: int, *rows: tuple[timedelta, str, str, float | None]) -> None:
    """Checks ``ago`` before now: (ago, region, "up" | "down", response time)."""
    results = [
        CheckResult(
            monitor_id=monitor_id,
            region=region,
            status=CheckStatus(status),
            response_time_ms=ms,
            checked_at_ms=int((NOW - ago).timestamp() * 1000),
        )
        for ago, region, status, ms in rows
    ]
    async with api.pool.acquire() as conn:
        await checks.insert_many(conn, results)


async def test_create_answers_201_with_the_monitor_and_its_unknown_status(alice: Person) -> None:
    response = await alice.client.post(
        "/api/v1/monitors", json=monitor_body(interval="30s", http={"accepted_statuses": ["200-204"]})
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "shop"
    assert body["interval"] == 30
    assert body["http"]["accepted_statuses"] == [{"low": 200, "high": 204}]
    assert body["status"] == "unknown"
    assert body["managed_by_config"] is False
    assert body["uptime_24h"] is body["last_response_time_ms"] is None
    fetched = await alice.client.get(f"/api/v1/monitors/{body['id']}")
    assert fetched.json() == body


async def test_list_shows_status_last_response_time_and_uptime_windows(api: Api, alice: Person) -> None:
    monitor = (await alice.client.post("/api/v1/monitors", json=monitor_body())).json()
    paused = (await alice.client.post("/api/v1/monitors", json=monitor_body(name="old", enabled=False))).json()
    await add_checks(
        api,
        monitor["id"],
        (timedelta(hours=1), "eu-west", "up", 120.0),  # 24 h: 1 up of 2
        (timedelta(minutes=1), "eu-west", "down", None),
        (timedelta(days=3), "eu-west", "up", 80.0),  # 7 d: 2 up of 4
        (timedelta(days=5), "us-east", "down", None),
        (timedelta(days=20), "eu-west", "up", 90.0),  # 30 d: 3 up of 5
        (timedelta(days=45), "eu-west", "down", None),  # outside every window
    )
    state = MonitorState(
        status=MonitorStatus.DOWN, incident=Incident(opened_at_ms=int(NOW.timestamp() * 1000) - 60_000, cause="x")
    )
    async with api.pool.acquire() as conn:
        await monitor_state.save_many(conn, {monitor["id"]: state.to_json()})

    listed = (await alice.client.get("/api/v1/monitors")).json()

    assert [m["id"] for m in listed] == [monitor["id"], paused["id"]]
    shown = listed[0]
    assert shown["status"] == "down"
    assert datetime.fromisoformat(shown["down_since"]) == NOW - timedelta(minutes=1)
    assert (shown["uptime_24h"], shown["uptime_7d"], shown["uptime_30d"]) == (50.0, 50.0, 60.0)
    assert shown["last_response_time_ms"] is None  # the latest check failed
    assert datetime.fromisoformat(shown["last_checked_at"]) == NOW - timedelta(minutes=1)
    assert listed[1]["status"] == "paused"


async def test_list_pages_by_cursor(alice: Person) -> None:
    ids = [
        (await alice.client.post("/api/v1/monitors", json=monitor_body(name=f"m{n}"))).json()["id"] for n in range(3)
    ]

    first = await alice.client.get("/api/v1/monitors", params={"limit": 2})
    rest = await alice.client.get("/api/v1/monitors", params={"limit": 2, "cursor": first.headers["X-Next-Cursor"]})

    assert [m["id"] for m in first.json() + rest.json()] == ids
    assert "X-Next-Cursor" not in rest.headers


async def test_invalid_fields_are_422_with_their_path(alice: Person) -> None:
    cases = {
        "interval": monitor_body(interval=0.5),
        "http.method": monitor_body(http={"method": "BREW"}),
        "name": monitor_body(name=""),
        "regions": monitor_body(regions=["mars"]),
        "quorum": monitor_body(quorum=3),  # more than the two regions it is checked from
        "extra": monitor_body(extra=1),
    }
    for field, body in cases.items():
        response = await alice.client.post("/api/v1/monitors", json=body)
        assert response.status_code == 422, field
        assert response.json()["detail"][0]["field"] == field, response.json()

    # A rule across fields names the body.
    both = await alice.client.post("/api/v1/monitors", json=monitor_body(interval=5, timeout=10))
    assert both.status_code == 422
    assert "timeout" in both.json()["detail"][0]["msg"]


async def test_the_file_and_the_api_share_one_rule_for_quorum_and_reminders(alice: Person) -> None:
    # The same rule and message as a [[monitors]] table (rules/monitors.py), named by its field.
    for body, field, message in [
        (monitor_body(regions=[REGIONS[0]], quorum=2), "quorum", "quorum 2 is more than its 1 regions"),
        (monitor_body(repeat_interval="31d"), "repeat_interval", "must be at most 30 days"),
    ]:
        response = await alice.client.post("/api/v1/monitors", json=body)
        assert response.status_code == 422, field
        assert [(p["field"], p["msg"]) for p in response.json()["detail"]] == [(field, message)]
    kept = await alice.client.post("/api/v1/monitors", json=monitor_body(repeat_interval="30d"))
    assert kept.status_code == 201 and kept.json()["repeat_interval"] == 30 * 86400


async def test_regions_outside_the_cluster_are_refused_but_configured_ones_kept(alice: Person) -> None:
    response = await alice.client.post("/api/v1/monitors", json=monitor_body(regions=["us-east"], quorum=1))

    assert response.status_code == 201
    assert response.json()["regions"] == ["us-east"]


async def test_put_replaces_every_field(alice: Person) -> None:
    created = (await alice.client.post("/api/v1/monitors", json=monitor_body(failure_threshold=5))).json()

    updated = await alice.client.put(
        f"/api/v1/monitors/{created['id']}",
        json={"name": "api", "kind": "tcp", "target": "db.example:5432", "interval": "2m", "timeout": 5},
    )

    assert updated.status_code == 200
    body = updated.json()
    assert (body["name"], body["kind"], body["target"], body["interval"]) == ("api", "tcp", "db.example:5432", 120)
    assert body["failure_threshold"] == 3  # a PUT is the whole monitor: omitted fields take their defaults
    assert (await alice.client.get(f"/api/v1/monitors/{created['id']}")).json()["name"] == "api"


async def test_toggle_pauses_and_resumes(alice: Person) -> None:
    created = (await alice.client.post("/api/v1/monitors", json=monitor_body())).json()

    off = await alice.client.patch(f"/api/v1/monitors/{created['id']}/toggle")
    shown = await alice.client.get(f"/api/v1/monitors/{created['id']}")
    on = await alice.client.patch(f"/api/v1/monitors/{created['id']}/toggle")

    assert off.json() == {"id": created["id"], "enabled": False}
    assert shown.json()["status"] == "paused"
    assert on.json() == {"id": created["id"], "enabled": True}


async def test_delete_removes_the_monitor_and_its_checks(api: Api, alice: Person) -> None:
    created = (await alice.client.post("/api/v1/monitors", json=monitor_body())).json()
    await add_checks(api, created["id"], (timedelta(minutes=1), "eu-west", "up", 10.0))

    deleted = await alice.client.delete(f"/api/v1/monitors/{created['id']}")

    assert deleted.json() == {"success": True}
    assert (await alice.client.get(f"/api/v1/monitors/{created['id']}")).status_code == 404
    assert await api.pool.fetchval("SELECT count(*) FROM checks WHERE monitor_id = $1", created["id"]) == 0


async def test_config_declared_monitors_answer_409_saying_so(api: Api, alice: Person) -> None:
    declared = await config_monitor(api, alice.id)

    shown = await alice.client.get(f"/api/v1/monitors/{declared}")
    changes = [
        await alice.client.put(f"/api/v1/monitors/{declared}", json=monitor_body()),
        await alice.client.patch(f"/api/v1/monitors/{declared}/toggle"),
        await alice.client.delete(f"/api/v1/monitors/{declared}"),
    ]

    assert shown.json()["managed_by_config"] is True
    assert [r.status_code for r in changes] == [409, 409, 409]
    assert all("managed by the config file" in r.json()["detail"] for r in changes)
    assert await api.pool.fetchval("SELECT (name, enabled) FROM monitors WHERE id = $1", declared) == ("declared", True)


async def test_checks_newest_first_filtered_and_paged(api: Api, alice: Person) -> None:
    monitor = (await alice.client.post("/api/v1/monitors", json=monitor_body())).json()
    await add_checks(
        api,
        monitor["id"],
        *[(timedelta(minutes=m), region, "up", float(m)) for m in range(1, 6) for region in ("eu-west", "us-east")],
    )
    path = f"/api/v1/monitors/{monitor['id']}/checks"

    seen: list[tuple[str, str]] = []
    params: dict[str, object] = {"limit": 3}
    while True:
        page = await alice.client.get(path, params=params)
        assert page.status_code == 200
        seen += [(c["checked_at"], c["region"]) for c in page.json()]
        if "X-Next-Cursor" not in page.headers:
            break
        params = {"limit": 3, "cursor": page.headers["X-Next-Cursor"]}
    eu = await alice.client.get(
        path, params={"region": "eu-west", "since": (NOW - timedelta(minutes=3, seconds=30)).isoformat()}
    )
    window = await alice.client.get(
        path,
        params={"since": (NOW - timedelta(minutes=4)).isoformat(), "until": (NOW - timedelta(minutes=2)).isoformat()},
    )

    assert len(seen) == 10 == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    assert [(c["region"], c["response_time_ms"]) for c in eu.json()] == [
        ("eu-west", 1.0),
        ("eu-west", 2.0),
        ("eu-west", 3.0),
    ]
    assert sorted(c["response_time_ms"] for c in window.json()) == [3.0, 3.0, 4.0, 4.0]


async def test_checks_refuse_bad_ranges(alice: Person) -> None:
    monitor = (await alice.client.post("/api/v1/monitors", json=monitor_body())).json()
    path = f"/api/v1/monitors/{monitor['id']}/checks"

    backwards = await alice.client.get(
        path, params={"since": NOW.isoformat(), "until": (NOW - timedelta(hours=1)).isoformat()}
    )
    ancient = await alice.client.get(path, params={"since": "0001-01-01T00:00:00+14:00"})
    region = await alice.client.get(path, params={"region": "eu west"})

    assert backwards.status_code == ancient.status_code == region.status_code == 422
    assert backwards.json()["detail"][0]["field"] == "until"
    assert ancient.json()["detail"][0]["field"] == "since"
    assert region.json()["detail"][0]["field"] == "region"


async def test_unknown_monitor_is_404(alice: Person) -> None:
    for response in (
        await alice.client.get("/api/v1/monitors/999999"),
        await alice.client.get("/api/v1/monitors/999999/checks"),
        await alice.client.put("/api/v1/monitors/999999", json=monitor_body()),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "monitor not found"}
