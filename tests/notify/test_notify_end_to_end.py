"""A target goes down; every kind of channel hears about it exactly once.

uptimed runs in this process (so respx can stand in for Slack, Discord and
Telegram); everything else is real: the HTTP target, Redis, Kafka,
PostgreSQL, a webhook receiver and an SMTP server speaking STARTTLS with a
certificate the client verifies.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from functools import partial

import anyio
import asyncpg
import httpx
import pytest
import respx

from tests.channels.conftest import smtp_server, tls_files  # noqa: F401 - fixtures
from tests.support import Stack, Target, WebhookReceiver, eventually
from uptimed import daemon
from uptimed.channels.registry import default_registry

pytestmark = pytest.mark.kafka

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
DISCORD = "https://discord.com/api/webhooks/123/abcdefabcdefabcdef"
TELEGRAM_TOKEN = "123456:ABCDEFabcdef_ghijklMNOPQR-stu"
SECRET = "s3cret-signing-key"


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = await Target().start()
    yield server
    await server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


async def test_down_reaches_every_channel_once(
    stack: Stack, target: Target, receiver: WebhookReceiver, smtp_server, tls_files
) -> None:
    mail = await smtp_server(mode="starttls")
    monitor_url = target.url("/shop_v2.0/health")
    settings = stack.settings(
        smtp={
            "host": "127.0.0.1",
            "port": mail.port,
            "tls": "starttls",
            "cafile": str(tls_files.ca),
            "from_address": "uptimed@example.com",
        },
        monitors=[
            {
                "owner": "alice",
                "name": "shop",
                "target": monitor_url,
                "interval": 1,
                "timeout": 0.5,
                "failure_threshold": 2,
                "success_threshold": 1,
            }
        ],
        integrations=[
            {
                "owner": "alice",
                "key": "hook",
                "type": "webhook",
                "config": {"webhookUrl": receiver.url("/hook"), "headers": {"X-Team": "ops"}, "secret": SECRET},
            },
            {"owner": "alice", "key": "mail", "type": "email", "config": {"email": "ops@example.com"}},
            {"owner": "alice", "key": "slack", "type": "slack", "config": {"webhookUrl": SLACK}},
            {"owner": "alice", "key": "discord", "type": "discord", "config": {"webhookUrl": DISCORD}},
            {
                "owner": "alice",
                "key": "telegram",
                "type": "telegram",
                "config": {"botToken": TELEGRAM_TOKEN, "chatId": -100123},
            },
        ],
    )
    with respx.mock(assert_all_called=True) as router:
        router.route(host="127.0.0.1").pass_through()
        slack = router.post(SLACK).mock(return_value=httpx.Response(200, text="ok"))
        discord = router.post(DISCORD).mock(return_value=httpx.Response(204))
        telegram = router.post(f"https://api.telegram.org/bot{TELEGRAM_TOKEN}/sendMessage").mock(
            return_value=httpx.Response(200, json={"ok": True, "result": {}})
        )
        async with anyio.create_task_group() as tg:
            await tg.start(partial(daemon.run, settings, registry=default_registry()))
            target.status = 500

            [request] = await receiver.wait_for("/hook")
            body = request.json()
            expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
            assert request.headers["X-Uptimed-Signature"] == expected
            assert request.headers["X-Team"] == "ops"
            assert body["event"] == "website.down" and body["status"] == "down" and body["url"] == monitor_url
            assert body["region"] == "default" and "timestamp" in body and "responseTime" in body
            assert body["data"]["type"] == "website.down" and body["data"]["name"] == "shop"

            received = await asyncio.wait_for(mail.mail.get(), 30)
            assert received.tls, "the mail was not sent over STARTTLS"
            assert received.envelope_to == ["ops@example.com"]
            assert "DOWN" in received.message["Subject"] and "shop" in received.message["Subject"]
            parts = {part.get_content_type() for part in received.message.walk()}
            assert {"text/plain", "text/html"} <= parts

            conn = await asyncpg.connect(stack.dsn)
            try:

                async def all_sent() -> list[asyncpg.Record] | None:
                    rows = await conn.fetch(
                        "SELECT i.type, n.status, n.attempts FROM notification_log n JOIN integrations i ON i.id = n.integration_id"
                    )
                    return rows if len(rows) == 5 and all(r["status"] == "SENT" for r in rows) else None

                rows = await eventually(all_sent)
                assert sorted(r["type"] for r in rows) == ["discord", "email", "slack", "telegram", "webhook"]
                assert all(r["attempts"] == 1 for r in rows)
            finally:
                await conn.close()

            slack_body = json.loads(slack.calls.last.request.content)
            assert "blocks" in slack_body and "shop" in slack_body["text"]
            embed = json.loads(discord.calls.last.request.content)["embeds"][0]
            assert "shop" in embed["title"] and embed["color"]
            message = json.loads(telegram.calls.last.request.content)
            assert message["chat_id"] == -100123 and message["parse_mode"] == "MarkdownV2"
            # The URL full of '_' and '.' arrives intact once MarkdownV2 escapes are undone.
            assert monitor_url.replace("_", "\\_").replace(".", "\\.") in message["text"]
            assert (slack.call_count, discord.call_count, telegram.call_count, len(receiver.to("/hook"))) == (
                1,
                1,
                1,
                1,
            )
            tg.cancel_scope.cancel()
