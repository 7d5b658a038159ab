"""``/api/v1/integrations`` and ``/api/v1/channels``: the original paths and shapes, secrets masked."""

from __future__ import annotations

from datetime import datetime

from tests.api.conftest import Api, Person, config_integration
from tests.support import WebhookReceiver

BOT_TOKEN = "123456:AAE-telegram-bot-token-abcdef"
HOOK = "https://hooks.slack.com/services/T000/B000/slack-secret-XYZW"


async def test_create_answers_201_with_the_original_shape_and_masked_secrets(alice: Person) -> None:
    response = await alice.client.post(
        "/api/v1/integrations", json={"type": "telegram", "config": {"botToken": BOT_TOKEN, "chatId": "-1001"}}
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "userId",
        "type",
        "name",
        "config",
        "enabled",
        "managedByConfig",
        "createdAt",
        "updatedAt",
        "lastDelivery",
    }
    assert body["userId"] == alice.id
    assert body["type"] == "telegram"
    assert body["enabled"] is True
    assert body["managedByConfig"] is False
    assert body["config"]["botToken"] == "…cdef"
    assert body["config"]["chatId"] == "-1001"
    datetime.fromisoformat(body["createdAt"])
    assert BOT_TOKEN not in response.text


async def test_list_is_newest_first_and_shows_only_the_callers(alice: Person, bob: Person) -> None:
    first = await alice.client.post("/api/v1/integrations", json={"type": "email", "config": {"email": "a@x.org"}})
    second = await alice.client.post("/api/v1/integrations", json={"type": "slack", "config": {"webhookUrl": HOOK}})
    await bob.client.post("/api/v1/integrations", json={"type": "email", "config": {"email": "b@x.org"}})

    listed = await alice.client.get("/api/v1/integrations")

    assert listed.status_code == 200
    assert [i["id"] for i in listed.json()] == [second.json()["id"], first.json()["id"]]
    assert listed.json()[0]["config"] == {"webhookUrl": "…XYZW"}
    assert "X-Next-Cursor" not in listed.headers


async def test_list_pages_by_cursor(alice: Person) -> None:
    ids = [
        (
            await alice.client.post("/api/v1/integrations", json={"type": "email", "config": {"email": f"{n}@x.org"}})
        ).json()["id"]
        for n in range(5)
    ]

    first = await alice.client.get("/api/v1/integrations", params={"limit": 2})
    second = await alice.client.get(
        "/api/v1/integrations", params={"limit": 2, "cursor": first.headers["X-Next-Cursor"]}
    )
    third = await alice.client.get(
        first.headers["Link"]
        .split(";")[0]
        .strip("<>")
        .replace(first.headers["X-Next-Cursor"], second.headers["X-Next-Cursor"])
    )

    assert [i["id"] for i in first.json() + second.json() + third.json()] == ids[::-1]
    assert "X-Next-Cursor" not in third.headers
    assert first.headers["Link"].endswith('; rel="next"')


async def test_a_bad_cursor_or_page_size_is_a_422_naming_the_parameter(alice: Person) -> None:
    bad_cursor = await alice.client.get("/api/v1/integrations", params={"cursor": "bm90LWEtY3Vyc29y"})
    too_many = await alice.client.get("/api/v1/integrations", params={"limit": 201})

    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"][0]["field"] == "cursor"
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["field"] == "limit"


async def test_unknown_type_is_a_422_listing_the_available_types(alice: Person) -> None:
    response = await alice.client.post("/api/v1/integrations", json={"type": "pager", "config": {}})

    assert response.status_code == 422
    body = response.json()
    assert body["detail"][0]["field"] == "type"
    assert body["detail"][0]["type"] == "unknown_channel"
    assert {"email", "slack", "webhook", "telegram", "discord"} <= set(body["available"])
    assert "webhook" in body["detail"][0]["msg"]


async def test_a_bad_field_is_a_422_with_its_path_and_without_the_value(alice: Person) -> None:
    response = await alice.client.post(
        "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": "ftp://secret-host/hook-XYZ"}}
    )
    missing = await alice.client.post("/api/v1/integrations", json={"type": "telegram", "config": {"chatId": 1}})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["detail"]] == ["config.webhookUrl"]
    assert response.json()["detail"][0]["loc"] == ["body", "config", "webhookUrl"]
    assert "secret-host" not in response.text
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["field"] == "config.botToken"
    assert missing.json()["detail"][0]["type"] == "missing"


async def test_a_body_without_type_is_a_422_naming_it(alice: Person) -> None:
    response = await alice.client.post("/api/v1/integrations", json={"config": {}})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "type"


async def test_put_replaces_config_and_keeps_secrets_left_out_or_sent_back_masked(
    api: Api, alice: Person, receiver: WebhookReceiver
) -> None:
    url = receiver.url("/hook-with-a-long-secret-path")
    created = (
        await alice.client.post(
            "/api/v1/integrations",
            json={
                "type": "webhook",
                "config": {"webhookUrl": url, "headers": {"Authorization": "Bearer header-secret-9876"}},
            },
        )
    ).json()

    # Left out entirely: webhookUrl and headers stay; the new timeout is taken.
    first = await alice.client.put(f"/api/v1/integrations/{created['id']}", json={"config": {"timeout": 3}})
    # Sent back as the API showed it: still the stored values.
    second = await alice.client.put(f"/api/v1/integrations/{created['id']}", json={"config": first.json()["config"]})

    assert first.status_code == second.status_code == 200
    assert first.json()["config"]["timeout"] == 3
    assert first.json()["config"]["webhookUrl"] == created["config"]["webhookUrl"]
    stored = await api.pool.fetchval("SELECT config FROM integrations WHERE id = $1", created["id"])
    assert stored["webhookUrl"] == url
    assert stored["headers"] == {"Authorization": "Bearer header-secret-9876"}
    assert second.json()["updatedAt"] >= first.json()["updatedAt"]
    # The stored secrets still work: the test notification reaches the receiver with its header.
    sent = await alice.client.post(f"/api/v1/integrations/{created['id']}/test")
    assert sent.json() == {"status": "sent", "error": None, "retryable": None}
    (request,) = await receiver.wait_for("/hook-with-a-long-secret-path")
    assert request.headers["Authorization"] == "Bearer header-secret-9876"


async def test_put_with_a_new_secret_replaces_it_and_validates(api: Api, alice: Person) -> None:
    created = (
        await alice.client.post("/api/v1/integrations", json={"type": "slack", "config": {"webhookUrl": HOOK}})
    ).json()
    new_hook = "https://hooks.slack.com/services/T000/B000/another-secret-ABCD"

    replaced = await alice.client.put(
        f"/api/v1/integrations/{created['id']}", json={"config": {"webhookUrl": new_hook}}
    )
    invalid = await alice.client.put(f"/api/v1/integrations/{created['id']}", json={"config": {"webhookUrl": "nope"}})

    assert replaced.json()["config"] == {"webhookUrl": "…ABCD"}
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["field"] == "config.webhookUrl"
    assert (
        await api.pool.fetchval("SELECT config->>'webhookUrl' FROM integrations WHERE id = $1", created["id"])
        == new_hook
    )


async def test_toggle_answers_id_and_enabled_and_flips_back(alice: Person) -> None:
    created = (
        await alice.client.post("/api/v1/integrations", json={"type": "email", "config": {"email": "a@x.org"}})
    ).json()

    off = await alice.client.patch(f"/api/v1/integrations/{created['id']}/toggle")
    on = await alice.client.patch(f"/api/v1/integrations/{created['id']}/toggle")

    assert off.json() == {"id": created["id"], "enabled": False}
    assert on.json() == {"id": created["id"], "enabled": True}


async def test_delete_answers_success_and_the_integration_is_gone(alice: Person) -> None:
    created = (
        await alice.client.post("/api/v1/integrations", json={"type": "email", "config": {"email": "a@x.org"}})
    ).json()

    deleted = await alice.client.delete(f"/api/v1/integrations/{created['id']}")
    again = await alice.client.delete(f"/api/v1/integrations/{created['id']}")

    assert deleted.json() == {"success": True}
    assert again.status_code == 404
    assert (await alice.client.get(f"/api/v1/integrations/{created['id']}")).status_code == 404
    assert (await alice.client.get("/api/v1/integrations")).json() == []


async def test_config_declared_integrations_are_read_only(api: Api, alice: Person) -> None:
    declared = await config_integration(api, alice.id)

    shown = await alice.client.get(f"/api/v1/integrations/{declared}")
    changes = [
        await alice.client.put(
            f"/api/v1/integrations/{declared}", json={"config": {"webhookUrl": "https://x.example/"}}
        ),
        await alice.client.patch(f"/api/v1/integrations/{declared}/toggle"),
        await alice.client.delete(f"/api/v1/integrations/{declared}"),
    ]

    assert shown.json()["managedByConfig"] is True
    assert [r.status_code for r in changes] == [409, 409, 409]
    assert all("config file" in r.json()["detail"] for r in changes)
    assert await api.pool.fetchval("SELECT enabled FROM integrations WHERE id = $1", declared) is True


async def test_test_notification_reaches_a_real_webhook(alice: Person, receiver: WebhookReceiver) -> None:
    created = (
        await alice.client.post(
            "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": receiver.url("/hook")}}
        )
    ).json()

    response = await alice.client.post(f"/api/v1/integrations/{created['id']}/test")

    assert response.status_code == 200
    assert response.json()["status"] == "sent"
    (request,) = await receiver.wait_for("/hook")
    body = request.json()
    # Unmistakably a test: a receiver that acts on "website.down" ignores it.
    assert (body["event"], body["status"], body["kind"]) == ("test", "test", "test")
    assert body["data"]["name"] == "Webhook to 127.0.0.1"
    assert body["url"] == "https://example.com/"


async def test_test_notification_reports_the_channels_error(alice: Person, receiver: WebhookReceiver) -> None:
    receiver.script("/broken", 503)
    receiver.script("/gone", 410)
    broken = (
        await alice.client.post(
            "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": receiver.url("/broken")}}
        )
    ).json()
    gone = (
        await alice.client.post(
            "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": receiver.url("/gone")}}
        )
    ).json()

    retryable = await alice.client.post(f"/api/v1/integrations/{broken['id']}/test")
    permanent = await alice.client.post(f"/api/v1/integrations/{gone['id']}/test")

    assert retryable.json() == {"status": "failed", "error": "HTTP 503: nope", "retryable": True}
    assert permanent.json()["status"] == "failed"
    assert permanent.json()["retryable"] is False
    assert "410" in permanent.json()["error"]


async def test_test_notification_to_a_closed_port_fails_without_revealing_the_url(
    alice: Person, receiver: WebhookReceiver
) -> None:
    await receiver.stop()  # nothing listens there any more
    url = receiver.url("/secret-path-token-QQQQ")
    created = (
        await alice.client.post("/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": url}})
    ).json()

    response = await alice.client.post(f"/api/v1/integrations/{created['id']}/test")

    assert response.json()["status"] == "failed"
    assert response.json()["retryable"] is True
    assert "secret-path-token" not in response.text


async def test_channels_lists_each_type_with_its_config_schema(alice: Person) -> None:
    response = await alice.client.get("/api/v1/channels")

    assert response.status_code == 200
    channels = {c["name"]: c for c in response.json()}
    telegram = channels["telegram"]
    assert telegram["configSchema"]["properties"]["botToken"]["format"] == "password"
    assert set(telegram["configSchema"]["required"]) == {"botToken", "chatId"}
    fields = {f["name"]: f for f in telegram["fields"]}
    assert fields["botToken"]["secret"] is True
    assert fields["chatId"]["secret"] is False
    assert "webhookUrl" in channels["webhook"]["configSchema"]["properties"]
