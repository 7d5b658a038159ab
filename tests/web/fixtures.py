"""The web pages over a real PostgreSQL database, called in-process through httpx's ASGI transport.

``site`` is the app with its pool; ``await site.person("alice")`` is a user
with a password who signed in through the real sign-in form, holding a
client that keeps the session cookie. ``person.post(path, data)`` sends a
form with the session's CSRF token, as the page's own form would.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support import Stack
from uptimed.app import create_app
from uptimed.channels.http import delivery_client
from uptimed.channels.registry import default_registry
from uptimed.config import DatabaseSettings, Settings
from uptimed.passwords import hash_password
from uptimed.rules.targets import policy_for
from uptimed.store import users
from uptimed.store.database import connect

REGIONS = ["eu-west", "us-east"]
PASSWORD = "correct horse battery"

_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
_SIGN_IN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a signed-in page carries."""
    match = _CSRF.search(html)
    assert match, "the page has no csrf-token meta tag (not signed in?)"
    return match[1]


@dataclass
class Person:
    id: int
    username: str
    client: httpx.AsyncClient
    csrf: str = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(path, **kwargs)

    async def post(
        self, path: str, data: dict[str, Any] | list[tuple[str, Any]] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """POST a form with this session's CSRF token."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
        form: dict[str, list[Any]] = {"csrf_token": [self.csrf]}
        for name, value in pairs:
            form.setdefault(name, []).extend(value if isinstance(value, list) else [value])
        return await self.client.post(path, data=form, **kwargs)


@dataclass
class Site:
    app: Any
    pool: asyncpg.Pool
    settings: Settings
    http: httpx.AsyncClient
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, address: str = "127.0.0.1") -> httpx.AsyncClient:
        """A browser of the pages, connecting from ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 123))
        client = httpx.AsyncClient(transport=transport, base_url="http://uptimed.test")
        self.clients.append(client)
        return client

    async def sign_in(self, client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
        """Fill in and send the sign-in form like a browser would."""
        page = await client.get("/login")
        token = _SIGN_IN_TOKEN.search(page.text)
        assert token, "the sign-in page has no form token"
        return await client.post(
            "/login", data={"csrf_token": token[1], "username": username, "password": password, "next": "/"}
        )

    async def person(self, username: str, *, password: str = PASSWORD) -> Person:
        """A user with a password, signed in."""
        user = await users.create(self.pool, username, f"{username}@example.com")
        await users.set_password_hash(self.pool, user.id, hash_password(password))
        client = self.client()
        response = await self.sign_in(client, username, password)
        assert response.status_code == 303, response.text
        person = Person(user.id, username, client)
        person.csrf = csrf_of((await client.get("/")).text)
        return person


def app_for(pool: asyncpg.Pool, settings: Settings, http: httpx.AsyncClient) -> Any:
    """The API and the pages over these connections, as a process of the daemon builds them."""

    async def readiness() -> dict[str, bool]:
        return {"postgresql": True}

    return create_app(
        pool=pool,
        registry=default_registry(),
        settings=settings,
        http=http,
        readiness=readiness,
        policy=policy_for(settings),
    )


@pytest.fixture
async def site(stack: Stack) -> AsyncIterator[Site]:
    settings = stack.settings(probe={"regions": REGIONS}, notify={"delivery_timeout": 5})
    pool = await connect(DatabaseSettings(dsn=stack.dsn))
    policy = policy_for(settings)
    http = delivery_client(timeout=5.0, policy=policy, per_destination=settings.notify.connections_per_destination)
    state = Site(app=app_for(pool, settings, http), pool=pool, settings=settings, http=http)
    yield state
    for client in state.clients:
        await client.aclose()
    await http.aclose()
    await pool.close()


@pytest.fixture
async def alice(site: Site) -> Person:
    return await site.person("alice")


@pytest.fixture
async def bob(site: Site) -> Person:
    return await site.person("bob")
