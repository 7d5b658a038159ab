"""The API over a real PostgreSQL database, called in-process through httpx's ASGI transport.

``api`` holds the app, its pool and the readiness it reports; ``alice`` and
``bob`` are users with a token each and a client that sends it. Every
response any client received is kept in ``api.responses``, for the tests
that look for secrets in them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support import Stack, WebhookReceiver
from uptimed.app import create_app
from uptimed.channels.http import delivery_client
from uptimed.channels.registry import default_registry
from uptimed.config import DatabaseSettings, Settings
from uptimed.rules.targets import policy_for
from uptimed.store import api_tokens, users
from uptimed.store.database import connect

REGIONS = ["eu-west", "us-east"]


@dataclass
class Api:
    app: Any
    pool: asyncpg.Pool
    settings: Settings
    http: httpx.AsyncClient
    ready: dict[str, bool]
    responses: list[httpx.Response] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        """A client of the app sending ``token`` as its bearer token (none when None)."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"

        async def keep(response: httpx.Response) -> None:
            await response.aread()
            self.responses.append(response)

        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://uptimed.test",
            headers=headers,
            event_hooks={"response": [keep]},
        )
        self.clients.append(client)
        return client


@dataclass
class Person:
    """A user of the API with a token and a client that uses it."""

    id: int
    username: str
    token: str
    client: httpx.AsyncClient


@asynccontextmanager
async def running_api(stack: Stack, **overrides: Any) -> AsyncIterator[Api]:
    """The app over this test's database, with ``overrides`` of the test stack's settings (``security={...}``)."""
    settings = stack.settings(**{"probe": {"regions": REGIONS}, "notify": {"delivery_timeout": 5}, **overrides})
    pool = await connect(DatabaseSettings(dsn=stack.dsn))
    policy = policy_for(settings)
    http = delivery_client(timeout=5.0, policy=policy, per_destination=settings.notify.connections_per_destination)
    ready = {"postgresql": True, "redis": True, "kafka_producer": True, "evaluator": True, "notifier": True}

    async def readiness() -> dict[str, bool]:
        return dict(ready)

    app = create_app(
        pool=pool, registry=default_registry(), settings=settings, http=http, readiness=readiness, policy=policy
    )
    state = Api(app=app, pool=pool, settings=settings, http=http, ready=ready)
    try:
        yield state
    finally:
        for client in state.clients:
            await client.aclose()
        await http.aclose()
        await pool.close()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with running_api(stack) as state:
        yield state


async def make_person(api: Api, username: str, *, admin: bool = False) -> Person:
    user = await users.create(api.pool, username, f"{username}@example.com", is_admin=admin)
    token, _ = await api_tokens.create(api.pool, user.id, "tests")
    return Person(user.id, user.username, token, api.client(token))


@pytest.fixture
async def alice(api: Api) -> Person:
    return await make_person(api, "alice")


@pytest.fixture
async def bob(api: Api) -> Person:
    return await make_person(api, "bob")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


def monitor_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "shop", "target": "https://shop.example/health", "interval": 60, "timeout": 10}
    body.update(overrides)
    return body


async def config_monitor(api: Api, owner_id: int, key: str = "declared") -> int:
    """A monitor as `[[monitors]]` in the TOML file would store it."""
    return await api.pool.fetchval(
        """
        INSERT INTO monitors (owner_id, config_key, name, target, interval_s, timeout_s)
        VALUES ($1, $2, $2, 'https://declared.example/', 60, 10) RETURNING id
        """,
        owner_id,
        key,
    )


async def config_integration(
    api: Api, owner_id: int, key: str = "declared", url: str = "https://hooks.example/declared-secret-path"
) -> int:
    """An integration as `[[integrations]]` in the TOML file would store it."""
    return await api.pool.fetchval(
        "INSERT INTO integrations (owner_id, config_key, type, config) VALUES ($1, $2, 'webhook', $3) RETURNING id",
        owner_id,
        key,
        {"webhookUrl": url, "headers": {}},
    )
