"""No response, log line or metric label carries a stored secret or an API token."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import respx
import structlog

from tests.api.conftest import Api, Person
from tests.support import WebhookReceiver
from uptimed import log
from uptimed.config import LogSettings

TELEGRAM = "987654:AAH-telegram-secret-token-1234"
SLACK = "https://hooks.slack.com/services/TSECRET/BSECRET/slack-secret-5678"
HEADER = "Bearer header-secret-value-2468"
SIGNING = "hmac-signing-secret-1357"
REPLACED = "https://hooks.slack.com/services/TSECRET/BSECRET/replaced-secret-9999"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """uptimed's logging as the daemon sets it up (JSON, debug), into a buffer; restored afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    log.configure(LogSettings(level="debug", format="json"), stream=buffer)
    yield buffer
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_no_secret_or_token_in_any_response_log_line_or_metric(
    api: Api, alice: Person, bob: Person, receiver: WebhookReceiver, captured_logs: io.StringIO
) -> None:
    hook = receiver.url("/hook/path-secret-8642")
    secrets = [TELEGRAM, SLACK, HEADER, SIGNING, REPLACED, hook, "path-secret-8642", alice.token, bob.token]
    client = alice.client

    telegram = await client.post(
        "/api/v1/integrations", json={"type": "telegram", "config": {"botToken": TELEGRAM, "chatId": 5}}
    )
    slack = await client.post("/api/v1/integrations", json={"type": "slack", "config": {"webhookUrl": SLACK}})
    webhook = await client.post(
        "/api/v1/integrations",
        json={
            "type": "webhook",
            "config": {"webhookUrl": hook, "headers": {"Authorization": HEADER}, "secret": SIGNING},
        },
    )
    ids = [r.json()["id"] for r in (telegram, slack, webhook)]
    created = await client.post("/api/v1/tokens", json={"name": "one more"})
    secrets.append(created.json()["token"])
    receiver.script("/hook/path-secret-8642", 200, 500)

    await client.get("/api/v1/integrations")
    for integration_id in ids:
        await client.get(f"/api/v1/integrations/{integration_id}")
        await client.patch(f"/api/v1/integrations/{integration_id}/toggle")
    await client.put(f"/api/v1/integrations/{ids[1]}", json={"config": {"webhookUrl": REPLACED}})
    await client.put(f"/api/v1/integrations/{ids[2]}", json={"config": {"timeout": 2}})
    sent = await client.post(f"/api/v1/integrations/{ids[2]}/test")
    failed = await client.post(f"/api/v1/integrations/{ids[2]}/test")
    with respx.mock(assert_all_called=True) as slack_api:  # Slack is a third party: mocked, never reached
        slack_api.post(REPLACED).respond(404, text="no_service")
        unreachable = await client.post(f"/api/v1/integrations/{ids[1]}/test")
    # Secrets in rejected input are not echoed back either.
    rejected = [
        await client.post(
            "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": f"ftp://{TELEGRAM}"}}
        ),
        await client.post(
            "/api/v1/integrations", json={"type": "telegram", "config": {"botToken": TELEGRAM, "chatId": [SLACK]}}
        ),
        await client.post("/api/v1/integrations", json={"type": f"x{'y' * 70}", "config": {"botToken": TELEGRAM}}),
        await client.post("/api/v1/integrations", json={"type": "slack", "config": {"webhookUrl": SLACK + "\u0000"}}),
        await client.put(
            f"/api/v1/integrations/{ids[0]}", json={"config": {"botToken": 12, "chatId": {"k": TELEGRAM}}}
        ),
    ]
    await api.client(f"upt_{TELEGRAM}").get("/api/v1/me")
    await bob.client.get(f"/api/v1/integrations/{ids[0]}")
    await api.client().get("/metrics")

    assert sent.json()["status"] == "sent" and failed.json()["status"] == "failed"
    assert unreachable.json() == {"status": "failed", "error": "HTTP 404: no_service", "retryable": False}
    assert all(r.status_code == 422 for r in rejected)
    assert len(receiver.to("/hook/path-secret-8642")) == 2  # the secrets did reach their one destination
    texts = {"logs": captured_logs.getvalue()}
    for n, response in enumerate(api.responses):
        texts[f"response {n} {response.request.method} {response.request.url.path}"] = (
            f"{response.status_code} {response.headers!r} {response.text}"
        )
    assert "integration.tested" in texts["logs"] and "api.request" in texts["logs"]
    assert len(api.responses) == 24
    leaks = [(where, secret) for where, text in texts.items() for secret in secrets if secret in text]
    # The one place a secret may appear: the answer that creates a token shows it, once.
    assert leaks == [("response 3 POST /api/v1/tokens", created.json()["token"])]
