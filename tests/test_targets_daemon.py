"""The target policy in the running daemon: the config file's monitors and integrations reach loopback, users' do not.

uptimed runs in this process with the default ``[security]`` (loopback
closed). Alice's config-file monitor on 127.0.0.1 works (as the demo's
does) and its alert reaches her config-file webhook on 127.0.0.1; a monitor
and a webhook of hers stored as if made through the API, on the same
addresses, are refused at the connection, each saying why.
"""

from __future__ import annotations

from functools import partial

import anyio
import asyncpg
import pytest

from tests.support import Stack, Target, WebhookReceiver, eventually
from uptimed import daemon
from uptimed.channels.registry import default_registry

pytestmark = pytest.mark.kafka

REFUSED = (
    "refused by the target policy: 127.0.0.1:{port} is a loopback address; allow it with [security] allow_networks"
)


async def test_users_targets_are_refused_at_the_connection_while_the_files_work(stack: Stack) -> None:
    target = await Target().start()
    receiver = await WebhookReceiver().start()
    monitor = {"owner": "alice", "interval": 1, "timeout": 0.5, "failure_threshold": 1, "success_threshold": 1}
    settings = stack.settings(
        security={"allow_networks": []},
        monitors=[{**monitor, "name": "shop", "target": target.url("/health")}],
        integrations=[
            {"owner": "alice", "key": "hook", "type": "webhook", "config": {"webhookUrl": receiver.url("/file")}}
        ],
    )
    conn = await asyncpg.connect(stack.dsn)
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(partial(daemon.run, settings, registry=default_registry()))
            alice = await conn.fetchval("SELECT id FROM users WHERE username = 'alice'")
            # As if made through the API when their names resolved elsewhere: what counts is the connection.
            users_monitor = await conn.fetchval(
                """
                INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s, failure_threshold)
                VALUES ($1, 'internal', $2, 1, 0.5, 1) RETURNING id
                """,
                alice,
                target.url("/internal"),
            )
            await conn.execute(
                "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', $2::jsonb)",
                alice,
                f'{{"webhookUrl": "{receiver.url("/users")}", "headers": {{}}}}',
            )

            async def refused_check() -> asyncpg.Record | None:
                return await conn.fetchrow(
                    "SELECT status, error FROM checks WHERE monitor_id = $1 LIMIT 1", users_monitor
                )

            check = await eventually(refused_check)
            assert (check["status"], check["error"]) == ("down", REFUSED.format(port=target.port))
            assert target.count(path="/internal") == 0
            await target.wait_until(lambda: target.count(path="/health") >= 1)  # the file's monitor reaches it

            target.status = 500  # the config-file monitor goes down: both of alice's webhooks are due
            await receiver.wait_for("/file")

            async def failed() -> asyncpg.Record | None:
                return await conn.fetchrow(
                    """
                    SELECT n.status, n.error_message, n.attempts FROM notification_log n
                    JOIN integrations i ON i.id = n.integration_id WHERE i.config_key IS NULL AND n.status = 'FAILED'
                    """
                )

            row = await eventually(failed)
            assert (row["error_message"], row["attempts"]) == (REFUSED.format(port=receiver.port), 1)
            assert receiver.to("/users") == []
            tg.cancel_scope.cancel()
    finally:
        await conn.close()
        await target.stop()
        await receiver.stop()
