"""Monitor kinds through the API: listed with their options' schemas, each kind's options under its name.

A kind's secret (a database password) is answered masked, and a PUT that
leaves it out or sends it back masked keeps it, as integrations' are kept.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, Person, monitor_body


async def test_the_kinds_are_listed_with_their_options(alice: Person) -> None:
    answer = await alice.client.get("/api/v1/kinds")

    assert answer.status_code == 200
    kinds = {k["name"]: k for k in answer.json()}
    assert {"http", "tcp", "ping", "dns", "tls", "postgres", "redis", "heartbeat"} <= set(kinds)
    assert next(iter(kinds)) == "http"
    assert kinds["heartbeat"]["scheduled"] is False and kinds["dns"]["scheduled"] is True
    assert kinds["dns"]["optionsSchema"]["properties"]["record"]["enum"] == [
        "A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "CAA",
    ]  # fmt: skip
    password = next(f for f in kinds["postgres"]["fields"] if f["name"] == "password")
    assert password["secret"] is True
    assert {f["name"] for f in kinds["http"]["fields"]} >= {"json_path", "json_equals", "cert_expiry_days"}


@pytest.mark.parametrize(
    ("kind", "target", "options"),
    [
        ("ping", "192.0.2.1", {"count": 5, "interval": 0.5, "loss_threshold": 40, "family": "ipv4"}),
        (
            "dns",
            "example.com",
            {"record": "AAAA", "server": "[2001:db8::53]:53", "expected": ["2001:db8::1"], "match": "any"},
        ),
        ("tls", "mail.example.com:25", {"expiry_days": 21, "server_name": None, "starttls": "smtp", "ca": None}),
        (
            "redis",
            "cache.internal",
            {"username": None, "password": None, "database": 2, "tls": False, "command": "PING", "expected": "PONG"},
        ),
        ("heartbeat", "", {"period": 3600.0, "grace": 600.0, "cron": None, "timezone": "UTC"}),
        ("tcp", "db.internal:5432", {}),
    ],
)
async def test_each_kinds_options_round_trip(alice: Person, kind: str, target: str, options: dict[str, Any]) -> None:
    created = await alice.client.post(
        "/api/v1/monitors", json=monitor_body(kind=kind, target=target, **{kind: options})
    )

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["target"], body[kind]) == (kind, target, options)
    assert body["http"]["method"] == "GET"  # http's options stay on every monitor, as the original API had them
    fetched = await alice.client.get(f"/api/v1/monitors/{body['id']}")
    assert fetched.json()[kind] == options


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"kind": "gopher"}, "kind", "unknown kind 'gopher'; available: dns, heartbeat, http, "),
        (
            {"kind": "dns", "target": "example.com", "dns": {"record": "SRV"}},
            "dns.record",
            "must be 'A', 'AAAA'",
        ),
        ({"kind": "dns", "target": "example.com", "ping": {"count": 3}}, "form", ""),
        ({"kind": "tcp", "target": "db.internal:5432", "smtp": {}}, "smtp", "is not a field here"),
        ({"kind": "tls", "target": "x:notaport"}, "target", "a tls monitor needs host:port"),
        ({"kind": "heartbeat", "heartbeat": {"period": "0s"}}, "heartbeat.period", "must be from 1 s to 366 days"),
    ],
)
async def test_a_kinds_problem_names_its_field(alice: Person, body: dict[str, Any], field: str, message: str) -> None:
    answer = await alice.client.post("/api/v1/monitors", json=monitor_body(**body))

    if field == "form":  # options of another kind are kept, as http's always were
        assert answer.status_code == 201, answer.text
        assert answer.json()["ping"]["count"] == 3
        return
    assert answer.status_code == 422, answer.text
    problems = {p["field"]: p["msg"] for p in answer.json()["detail"]}
    assert field in problems, problems
    assert message in problems[field]


async def test_a_kinds_secret_is_masked_and_kept_unless_replaced_or_removed(api: Api, alice: Person) -> None:
    body = monitor_body(
        kind="postgres", target="db.internal", postgres={"user": "probe", "password": "s3cret-s3cret-42"}
    )
    created = await alice.client.post("/api/v1/monitors", json=body)
    assert created.status_code == 201, created.text
    monitor_id, shown = created.json()["id"], created.json()["postgres"]

    async def stored() -> Any:
        return (await api.pool.fetchval("SELECT options FROM monitors WHERE id = $1", monitor_id))["postgres"][
            "password"
        ]

    assert shown == {
        "user": "probe",
        "password": "…t-42",
        "database": None,
        "tls": "prefer",
        "query": None,
        "expected": None,
    }
    left_out = await alice.client.put(
        f"/api/v1/monitors/{monitor_id}",
        json=monitor_body(kind="postgres", target="db.internal", postgres={"user": "probe"}),
    )
    assert left_out.status_code == 200 and await stored() == "s3cret-s3cret-42"
    echoed = await alice.client.put(
        f"/api/v1/monitors/{monitor_id}",
        json=monitor_body(
            kind="postgres", target="db.internal", postgres={"user": "probe", "password": shown["password"]}
        ),
    )
    assert echoed.status_code == 200 and await stored() == "s3cret-s3cret-42"
    replaced = await alice.client.put(
        f"/api/v1/monitors/{monitor_id}",
        json=monitor_body(
            kind="postgres", target="db.internal", postgres={"user": "probe", "password": "another-one-99"}
        ),
    )
    assert replaced.status_code == 200 and await stored() == "another-one-99"
    removed = await alice.client.put(
        f"/api/v1/monitors/{monitor_id}",
        json=monitor_body(kind="postgres", target="db.internal", postgres={"user": "probe", "password": None}),
    )
    assert removed.status_code == 200 and await stored() is None
    assert not any("s3cret-s3cret-42" in r.text or "another-one-99" in r.text for r in api.responses)
