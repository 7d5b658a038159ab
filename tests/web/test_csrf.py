"""Every form of the web pages is refused without the session's CSRF token, and nothing changes."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from tests.web.fixtures import Person, Site
from uptimed import web

COUNTED = ("monitors", "integrations", "status_pages", "web_sessions")


def page_forms() -> list[str]:
    """The path of every POST route of the pages (ids filled in with 1), sign-in aside."""
    paths = [
        re.sub(r"\{[^}]+\}", "1", route.path)
        for module in web.PAGES
        for route in module.router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods and route.path != "/login"
    ]
    assert len(paths) >= 8, (
        paths
    )  # logout, monitors (new, edit, toggle, delete), integrations (add, toggle, delete, test), status page
    return paths


async def snapshot(site: Site) -> dict[str, list]:
    return {table: [dict(r) for r in await site.pool.fetch(f"SELECT * FROM {table} ORDER BY 1")] for table in COUNTED}


@pytest.mark.parametrize("token", [None, "", "not-the-token"], ids=["missing", "empty", "wrong"])
async def test_every_page_form_is_refused_without_the_sessions_token(
    site: Site, alice: Person, token: str | None
) -> None:
    await site.pool.execute(
        "INSERT INTO monitors (id, owner_id, name, target, interval_s, timeout_s) VALUES (1, $1, 'm', 'https://m.example/', 60, 10)",
        alice.id,
    )
    await site.pool.execute(
        "INSERT INTO integrations (id, owner_id, type, config) VALUES (1, $1, 'webhook', $2)",
        alice.id,
        {"webhookUrl": "https://hooks.example/x"},
    )
    before = await snapshot(site)
    data = {
        "name": "changed",
        "target": "https://changed.example/",
        "interval": "30s",
        "timeout": "5s",
        "type": "webhook",
        "webhook.webhookUrl": "https://evil.example/",
        "slug": "pwned",
        "title": "x",
        "published": "on",
    }
    if token is not None:
        data["csrf_token"] = token
    for path in page_forms():
        answer = await alice.client.post(path, data=data)
        assert answer.status_code == 403, f"{path}: {answer.status_code}"
    assert await snapshot(site) == before
