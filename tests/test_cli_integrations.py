"""``uptimed integrations USER``: a user's integrations by name, with how their last deliveries went."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.test_exports import config, run
from uptimed.rules import owned
from uptimed.store import users

pytestmark = pytest.mark.usefixtures("clean_env")


async def deliveries(pool: asyncpg.Pool, user_id: int, integration_id: int, statuses: list[str]) -> None:
    for status in statuses:
        await pool.execute(
            "INSERT INTO notification_log (event_id, event_type, integration_id, user_id, status, payload, error_message)"
            " VALUES ($1, 'website.down', $2, $3, $4, '{}', $5)",
            uuid.uuid4(),
            integration_id,
            user_id,
            status,
            "HTTP 500 from the receiver" if status == "FAILED" else None,
        )


async def test_names_state_and_recent_failures(
    pool: asyncpg.Pool, database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice = await users.create(pool, "alice", "alice@example.com")
    await users.create(pool, "bob", "bob@example.com")
    ops = await owned.create_integration(
        pool, alice.id, "webhook", {"webhookUrl": "https://hooks.example/ops"}, name="Ops channel"
    )
    mail = await owned.create_integration(pool, alice.id, "email", {"email": "oncall@example.com"}, name=None)
    quiet = await owned.create_integration(
        pool, alice.id, "webhook", {"webhookUrl": "https://hooks.example/q"}, name="Q"
    )
    await owned.toggle(pool, quiet)
    await deliveries(pool, alice.id, ops.id, ["SENT", "SENT", "FAILED", "FAILED", "SENT", "FAILED", "FAILED"])
    await deliveries(pool, alice.id, mail.id, ["SENT"])
    cfg = config(tmp_path, database, "a")
    capsys.readouterr()  # the setup's log lines

    assert await run(["integrations", "alice", "-c", cfg]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{ops.id}  Ops channel  (webhook, active)  last delivery FAILED ")
    # The newest five, oldest first: FAILED, FAILED, SENT, FAILED, FAILED.
    assert lines[0].endswith("; 4 of the last 5 failed")
    assert lines[1].startswith(f"{mail.id}  Email to oncall@example.com  (email, active)  last delivery SENT ")
    assert "failed" not in lines[1]
    assert lines[2] == f"{quiet.id}  Q  (webhook, disabled)  no deliveries yet"

    assert await run(["integrations", "bob", "-c", cfg]) == 0
    assert capsys.readouterr().out == "bob has no integrations\n"
    assert await run(["integrations", "nobody", "-c", cfg]) == 1
    assert "no user named 'nobody'" in capsys.readouterr().err
