"""Services that echo the request back: no secret of an integration reaches the stored error, the API, the page or the log.

Each built-in channel with secrets delivers to a service (respx) that
answers an error quoting the request: the URL whole, its path, its path
URL-encoded and JSON-escaped, and every header. Once through a test send,
once through the dispatcher; afterwards the error is looked for in the
notification log, the API's answers, the notifications page and every log
record. (Email has no secret in its integration config: its SMTP password
is the operator's setting.)
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import anyio
import httpx
import pytest
import respx
from structlog.testing import capture_logs

from tests.api.conftest import Api, make_person, running_api
from tests.support import Stack, eventually
from tests.web.fixtures import PASSWORD
from uptimed.channels.registry import default_registry
from uptimed.config import NotifySettings
from uptimed.event import EventType, MonitorEvent
from uptimed.notify.dispatcher import Dispatcher
from uptimed.passwords import hash_password
from uptimed.store import notification_log, users
from uptimed.store.notification_log import Intent

TELEGRAM_TOKEN = "123456:TGSECRETabcdefghij_klmnopqrst"
CHANNELS = {
    "webhook": (
        {
            "webhookUrl": "https://hooks.example/in/whSECRETpath0001?key=whSECRETquery02",
            "headers": {"Authorization": "Bearer hdrSECRET0003", "X-Api-Key": "hdrSECRET0004"},
            "secret": "signSECRET0005",
        },
        ["whSECRETpath0001", "whSECRETquery02", "hdrSECRET0003", "hdrSECRET0004", "signSECRET0005"],
    ),
    "slack": (
        {"webhookUrl": "https://hooks.slack.com/services/T00SECRET06/B00SECRET07/slSECRETtoken0008"},
        ["T00SECRET06", "B00SECRET07", "slSECRETtoken0008"],
    ),
    "discord": (
        {"webhookUrl": "https://discord.com/api/webhooks/998877665544332211/dcSECRETtoken0009abcdef"},
        ["dcSECRETtoken0009abcdef", "998877665544332211"],
    ),
    "telegram": ({"botToken": TELEGRAM_TOKEN, "chatId": -1001}, [TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1]]),
}
SECRET = re.compile(r"SECRET|" + re.escape(TELEGRAM_TOKEN.split(":")[1][:10]))


def echo(request: httpx.Request) -> httpx.Response:
    """A 404 that quotes the request every way a service might."""
    url = str(request.url)
    text = (
        f"no route for {request.method} {request.url.path} (full: {url}; raw: {request.url.raw_path.decode()}; "
        f"encoded: {quote(url, safe='')}; json: {json.dumps(url).replace('/', chr(92) + '/')}; "
        f"headers: {dict(request.headers)})"
    )
    if request.url.host == "api.telegram.org":  # Telegram answers JSON
        return httpx.Response(404, json={"ok": False, "error_code": 404, "description": text})
    return httpx.Response(404, text=text)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with running_api(stack, security={"allow_all_networks": True}) as state:
        yield state


def leaks(text: str) -> list[str]:
    return SECRET.findall(text)


async def test_no_channel_secret_reaches_the_stored_error_the_api_the_page_or_the_log(api: Api) -> None:
    alice = await make_person(api, "alice")
    await users.set_password_hash(api.pool, alice.id, hash_password(PASSWORD))
    integrations: dict[str, int] = {}
    for kind, (config, _) in CHANNELS.items():
        created = await alice.client.post("/api/v1/integrations", json={"type": kind, "config": config})
        assert created.status_code == 201, created.text
        integrations[kind] = created.json()["id"]

    with capture_logs() as logged, respx.mock(assert_all_mocked=True) as router:
        router.route().mock(side_effect=echo)
        # 1. Test sends: the answer to the caller.
        for kind, integration_id in integrations.items():
            answer = (await alice.client.post(f"/api/v1/integrations/{integration_id}/test")).json()
            assert answer["status"] == "failed" and answer["error"].startswith("HTTP 404"), (kind, answer)
            assert leaks(answer["error"]) == [], (kind, answer["error"])
            assert "***" in answer["error"], (kind, answer["error"])  # masked, not merely cut away
            assert len(answer["error"]) <= 200

        # 2. Real deliveries by the dispatcher: the error stored, then shown.
        event = MonitorEvent(
            type=EventType.DOWN,
            websiteId=1,
            userId=alice.id,
            url="https://shop.example/",
            name="shop",
            eventId=uuid.uuid4(),
        )
        async with api.pool.acquire() as conn:
            await notification_log.add_intents(conn, [Intent(event, i) for i in integrations.values()])
        dispatcher = Dispatcher(
            pool=api.pool,
            registry=default_registry(),
            settings=NotifySettings(delivery_timeout=5, max_attempts=1),
            smtp=api.settings.smtp,
            http=api.http,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(dispatcher.run)

            async def all_failed() -> list[str] | None:
                rows = await api.pool.fetch("SELECT status, error_message FROM notification_log")
                return [r["error_message"] for r in rows] if all(r["status"] == "FAILED" for r in rows) else None

            stored = await eventually(all_failed)
            tg.cancel_scope.cancel()
    assert len(stored) == 4 and all(e.startswith("HTTP 404") for e in stored)
    assert [leaks(e) for e in stored] == [[]] * 4, stored

    shown = await alice.client.get("/api/v1/notifications")
    assert shown.status_code == 200 and len(shown.json()) == 4
    assert leaks(shown.text) == []
    page_client = api.client()
    login = await page_client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)[1]  # type: ignore[index]
    signed = await page_client.post(
        "/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD, "next": "/notifications"}
    )
    page = await page_client.get(signed.headers["location"])
    assert page.status_code == 200 and "HTTP 404" in page.text
    assert leaks(page.text) == []
    assert [entry for entry in logged if leaks(repr(entry))] == []
    assert any(entry["event"] == "delivery.failed" for entry in logged)
