"""Per-monitor routing from the API: a monitor that chooses its integrations notifies only those.

The monitors and integrations are made through the API; the daemon runs in
this process against the real PostgreSQL, Redis and Kafka, and a real target
goes down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import anyio
import pytest

from tests.api.conftest import Api, Person, monitor_body, running_api
from tests.support import Stack, Target, WebhookReceiver
from uptimed import daemon
from uptimed.channels.registry import default_registry

pytestmark = pytest.mark.kafka


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    """The API with monitors checked every second allowed (below ``[quotas] min_interval``'s default)."""
    async with running_api(stack, quotas={"min_interval": 1}) as state:
        yield state


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = await Target().start()
    yield server
    await server.stop()


async def test_a_monitor_notifies_only_the_integrations_it_chose(
    api: Api, alice: Person, bob: Person, stack: Stack, topics: Stack, receiver: WebhookReceiver, target: Target
) -> None:
    hooks = {}
    for name in ("ops", "db", "all"):
        created = await alice.client.post(
            "/api/v1/integrations",
            json={"type": "webhook", "name": f"hook {name}", "config": {"webhookUrl": receiver.url(f"/{name}")}},
        )
        assert created.status_code == 201
        hooks[name] = created.json()["id"]
    strangers = await bob.client.post(
        "/api/v1/integrations", json={"type": "webhook", "config": {"webhookUrl": receiver.url("/bob")}}
    )
    fast = {"interval": 1, "timeout": 0.5, "failure_threshold": 1, "success_threshold": 1, "regions": []}
    refused = await alice.client.post(
        "/api/v1/monitors",
        json=monitor_body(target=target.url("/"), integrations=[strangers.json()["id"]], **fast),
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "integrations"

    chosen = await alice.client.post(
        "/api/v1/monitors",
        json=monitor_body(name="db", target=target.url("/db"), integrations=[hooks["db"], hooks["all"]], **fast),
    )
    assert chosen.status_code == 201
    assert chosen.json()["integrations"] == [hooks["db"], hooks["all"]]
    everyone = await alice.client.post(
        "/api/v1/monitors", json=monitor_body(name="shop", target=target.url("/shop"), **fast)
    )
    assert everyone.json()["integrations"] is None

    target.status = 500
    async with anyio.create_task_group() as tg:
        await tg.start(partial(daemon.run, topics.settings(), registry=default_registry()))
        # The shop notifies all three; the db monitor only its two.
        await receiver.wait_for("/ops")
        await receiver.wait_for("/db", count=2)
        await receiver.wait_for("/all", count=2)
        tg.cancel_scope.cancel()
    names = {r.json()["data"]["name"] for r in receiver.to("/ops")}
    assert names == {"shop"}
    assert {r.json()["data"]["name"] for r in receiver.to("/db")} == {"db", "shop"}
    assert receiver.to("/bob") == []
    logged = await api.pool.fetch(
        "SELECT n.integration_id FROM notification_log n WHERE n.monitor_id = $1 ORDER BY 1", chosen.json()["id"]
    )
    assert [r["integration_id"] for r in logged] == [hooks["db"], hooks["all"]]

    # Choosing again through PUT; null is all of them again.
    changed = await alice.client.put(
        f"/api/v1/monitors/{chosen.json()['id']}", json=monitor_body(name="db", target=target.url("/db"), **fast)
    )
    assert changed.json()["integrations"] is None
