"""Validation at the door, and monitor credentials kept secret.

Every monitor field is checked when it arrives, the problem named by its
field. A password in a monitor's URL, a token in its query and sensitive
header values come back masked, survive a PUT that sends them back masked
or leaves them out, and never reach a notification.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, Person, monitor_body
from uptimed.evaluate.events import event_for
from uptimed.evaluate.state import ChangeKind, StateChange
from uptimed.monitor import Monitor
from uptimed.store import monitors

BAD = [
    ({"target": "https://shop.example/\r\nX-Injected: 1"}, "target", "control characters"),
    ({"target": "https://shop.example:99999/"}, "target", "port must be a number from 1 to 65535"),
    ({"target": "https://shop.example:0/"}, "target", "port must be a number from 1 to 65535"),
    ({"kind": "tcp", "target": "db.example:99999"}, "target", "a number from 1 to 65535"),
    ({"target": "https://shop example/"}, "target", "may not contain spaces"),
    ({"name": "   "}, "name", "must not be blank"),
    ({"name": "x" * 201}, "name", "at most 200 characters"),
    ({"name": "line\nbreak"}, "name", "control characters"),
    ({"timeout": 90, "interval": 60}, "timeout", "longer than interval"),
    ({"http": {"accepted_statuses": ["399-200"]}}, "http.accepted_statuses", "ends before it starts"),
    ({"http": {"accepted_statuses": [{"low": 300, "high": 200}]}}, "http.accepted_statuses", "ends before it starts"),
    ({"http": {"accepted_statuses": [{"low": 99, "high": 200}]}}, "http.accepted_statuses", "from 100 to 599"),
    ({"http": {"headers": {"X-A": "one\r\nX-B: two"}}}, "http.headers", "control characters"),
    ({"http": {"headers": {"Bad Name": "v"}}}, "http.headers", "a header name is letters"),
    ({"http": {"keyword": "a\x01b"}}, "http.keyword", "control characters"),
]


@pytest.mark.parametrize(("fields", "field", "message"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
async def test_every_monitor_field_is_checked_at_the_door_naming_the_field(
    api: Api, alice: Person, fields: dict[str, Any], field: str, message: str
) -> None:
    response = await alice.client.post("/api/v1/monitors", json=monitor_body(**fields))
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert [p["field"] for p in problems] == [field], problems
    assert message in problems[0]["msg"]
    assert "\r\n" not in response.text  # nothing it was sent is echoed


async def test_names_are_trimmed(api: Api, alice: Person) -> None:
    created = await alice.client.post("/api/v1/monitors", json=monitor_body(name="  shop  "))
    assert created.json().get("name") == "shop", created.text


SECRET_TARGET = "https://ops:pw-SECRET-1@shop.example/health?token=tok-SECRET-2&lang=en"
HEADERS = {
    "Authorization": "Bearer hdr-SECRET-3",
    "Cookie": "sid=ck-SECRET-4",
    "X-Api-Key": "k-SECRET-5",
    "Accept": "text/html",
}


async def test_monitor_credentials_come_back_masked_and_survive_a_put(api: Api, alice: Person) -> None:
    created = await alice.client.post(
        "/api/v1/monitors", json=monitor_body(target=SECRET_TARGET, http={"headers": HEADERS})
    )
    assert created.status_code == 201, created.text
    shown = created.json()
    assert "SECRET" not in created.text
    assert shown["target"] == "https://ops:********@shop.example/health?token=********&lang=en"
    assert shown["http"]["headers"] == {
        "Authorization": "…ET-3",
        "Cookie": "…ET-4",
        "X-Api-Key": "********",
        "Accept": "text/html",
    }
    listed = await alice.client.get("/api/v1/monitors")
    assert "SECRET" not in listed.text
    monitor_id = shown["id"]

    async def stored() -> tuple[str, dict[str, str]]:
        row = await api.pool.fetchrow("SELECT target, options FROM monitors WHERE id = $1", monitor_id)
        return row["target"], row["options"]["http"]["headers"]

    # Sent back as it came (masked): nothing changes but the name.
    body = {k: shown[k] for k in ("kind", "target", "interval", "timeout", "http")} | {"name": "renamed"}
    assert (await alice.client.put(f"/api/v1/monitors/{monitor_id}", json=body)).status_code == 200
    assert await stored() == (SECRET_TARGET, HEADERS)
    # Left out: kept. Sent empty: removed. A new target: replaced.
    body["http"] = {"headers": {"Accept": "*/*", "Cookie": ""}}
    assert (await alice.client.put(f"/api/v1/monitors/{monitor_id}", json=body)).status_code == 200
    target, headers = await stored()
    assert target == SECRET_TARGET
    assert headers == {"Accept": "*/*", "Authorization": "Bearer hdr-SECRET-3", "X-Api-Key": "k-SECRET-5"}
    body["target"] = "https://shop.example/other"
    assert (await alice.client.put(f"/api/v1/monitors/{monitor_id}", json=body)).status_code == 200
    assert (await stored())[0] == "https://shop.example/other"
    assert all("SECRET" not in r.text for r in api.responses)


def test_notifications_never_carry_the_monitors_credentials() -> None:
    monitor = Monitor(id=1, owner_id=1, name="shop", target=SECRET_TARGET, http={"headers": HEADERS})
    change = StateChange(kind=ChangeKind.DOWN, at_ms=1_000, reason="HTTP 500", regions={"eu": "down"}, region="eu")
    event = event_for(change, monitor, 2_000, incident_id=7)
    assert event.url == "https://shop.example/health?token=********&lang=en"
    assert "SECRET" not in event.model_dump_json()


async def test_a_monitor_stored_before_the_checks_at_the_door_still_loads_and_shows(api: Api, alice: Person) -> None:
    monitor_id = await api.pool.fetchval(
        """
        INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s, options)
        VALUES ($1, '   ', 'https://old.example:99999/', 60, 10,
                '{"http": {"headers": {"X-Old": "a\\r\\nb"}, "accepted_statuses": [{"low": 300, "high": 200}]}}')
        RETURNING id
        """,
        alice.id,
    )
    shown = await alice.client.get(f"/api/v1/monitors/{monitor_id}")
    assert shown.status_code == 200, shown.text
    assert (await alice.client.get("/api/v1/monitors")).status_code == 200
    # What every process's monitor feed reads (uptimed.store.monitor_feed) still validates.
    assert [monitors.monitor_from_row(row).id for row in await monitors.rows_of(api.pool)] == [monitor_id]
