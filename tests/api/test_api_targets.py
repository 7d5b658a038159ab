"""SSRF attempts through the API as a signed-in user: refused, naming the setting; allowed once it allows them.

Each attempt is a monitor or an integration aimed at an internal address: a
loopback or cloud-metadata IP, ``localhost``, uptimed's own PostgreSQL,
Redis, Kafka or API. A target that slipped past the check at save time (a
name that resolved elsewhere then) is still refused when uptimed connects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import Api, make_person, monitor_body, running_api
from tests.support import Stack, WebhookReceiver

SETTING = "[security] allow_networks"


@pytest.fixture
async def strict(stack: Stack) -> AsyncIterator[Api]:
    """The API with the default target policy (the test stack otherwise opens loopback)."""
    async with running_api(stack, security={"allow_networks": []}, api={"port": 8765}) as state:
        yield state


def ports_of(stack: Stack) -> dict[str, int]:
    return {
        "PostgreSQL": urlsplit(stack.dsn).port or 5432,
        "Redis": urlsplit(stack.redis_url).port or 6379,
        "Kafka broker": int(stack.bootstrap.split(",")[0].rsplit(":", 1)[1]),
        "API": 8765,
    }


INTERNAL_MONITORS = [
    {"target": "http://127.0.0.1:8080/readyz"},
    {"target": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"},
    {"target": "http://localhost:9200/"},
    {"target": "http://[::1]/"},
    {"target": "http://[::ffff:127.0.0.1]/"},
    {"target": "http://10.0.0.5/admin"},
    {"target": "127.0.0.1:22", "kind": "tcp"},
    {"target": "LocalHost:6379", "kind": "tcp"},
]


@pytest.mark.parametrize("fields", INTERNAL_MONITORS, ids=lambda f: f["target"])
async def test_monitors_on_internal_addresses_are_refused_naming_the_setting(
    strict: Api, fields: dict[str, str]
) -> None:
    alice = await make_person(strict, "alice")
    response = await alice.client.post("/api/v1/monitors", json=monitor_body(**fields))
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == "target" and problem["type"] == "target_refused"
    assert "refused by the target policy" in problem["msg"] and SETTING in problem["msg"]
    assert await strict.pool.fetchval("SELECT count(*) FROM monitors") == 0


async def test_changing_a_monitor_to_an_internal_address_is_refused(strict: Api) -> None:
    alice = await make_person(strict, "alice")
    created = await alice.client.post("/api/v1/monitors", json=monitor_body(target="https://93.184.215.14/"))
    assert created.status_code == 201, created.text
    moved = await alice.client.put(
        f"/api/v1/monitors/{created.json()['id']}", json=monitor_body(target="http://169.254.169.254/")
    )
    assert moved.status_code == 422
    assert SETTING in moved.json()["detail"][0]["msg"]


async def test_integrations_on_internal_addresses_are_refused(strict: Api) -> None:
    alice = await make_person(strict, "alice")
    for kind, config, field in (
        ("webhook", {"webhookUrl": "http://127.0.0.1:8080/api/v1/monitors"}, "config.webhookUrl"),
        ("slack", {"webhookUrl": "http://169.254.169.254/latest/"}, "config.webhookUrl"),
        ("discord", {"webhookUrl": "http://localhost/hook"}, "config.webhookUrl"),
    ):
        response = await alice.client.post("/api/v1/integrations", json={"type": kind, "config": config})
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        assert problem["field"] == field and SETTING in problem["msg"]
        # The message names the address, never the URL (it is a secret).
        assert "/api/v1/monitors" not in response.text and "/latest/" not in response.text


async def test_the_daemons_own_services_stay_refused_when_private_networks_are_allowed(stack: Stack) -> None:
    async with running_api(stack, security={"allow_networks": ["127.0.0.0/8"]}, api={"port": 8765}) as api:
        alice = await make_person(api, "alice")
        for name, port in ports_of(stack).items():
            for fields in ({"target": f"127.0.0.1:{port}", "kind": "tcp"}, {"target": f"http://localhost:{port}/"}):
                response = await alice.client.post("/api/v1/monitors", json=monitor_body(**fields))
                assert response.status_code == 422, (name, response.text)
                message = response.json()["detail"][0]["msg"]
                assert f"uptimed's own {name}" in message, message
        # Any other loopback port is open now.
        allowed = await alice.client.post("/api/v1/monitors", json=monitor_body(target="http://127.0.0.1:9/"))
        assert allowed.status_code == 201, allowed.text


async def test_allow_networks_admits_what_it_names(stack: Stack) -> None:
    networks = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "10.0.0.0/8"]
    async with running_api(stack, security={"allow_networks": networks}, api={"port": 8765}) as api:
        alice = await make_person(api, "alice")
        for fields in INTERNAL_MONITORS[:7]:
            response = await alice.client.post("/api/v1/monitors", json=monitor_body(**fields))
            assert response.status_code == 201, (fields, response.text)


async def test_a_test_send_to_an_internal_address_stored_earlier_is_refused_at_the_connection(strict: Api) -> None:
    """A name that resolved to a public address when saved and to loopback now: the connection is what counts."""
    receiver = await WebhookReceiver().start()
    try:
        alice = await make_person(strict, "alice")
        integration_id = await strict.pool.fetchval(
            "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', $2) RETURNING id",
            alice.id,
            {"webhookUrl": f"http://localhost:{receiver.port}/rebound", "headers": {}},
        )
        response = await alice.client.post(f"/api/v1/integrations/{integration_id}/test")
        assert response.json() == {
            "status": "failed",
            "error": f"refused by the target policy: 127.0.0.1:{receiver.port} is a loopback address, and so is "
            f"every address of localhost; allow it with {SETTING}",
            "retryable": False,
        }
        assert receiver.requests == []
    finally:
        await receiver.stop()
