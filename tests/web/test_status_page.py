"""The status page: its settings, and the public page that shows only what its owner chose."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.web.fixtures import Person, Site
from uptimed.evaluate.state import MonitorState, MonitorStatus
from uptimed.monitor import MonitorFields
from uptimed.store import monitors


async def _monitor(site: Site, owner: Person, name: str, target: str) -> int:
    return (await monitors.create(site.pool, owner.id, MonitorFields(name=name, target=target))).id


async def _state(site: Site, monitor_id: int, status: MonitorStatus) -> None:
    await site.pool.execute(
        "INSERT INTO monitor_state (monitor_id, state) VALUES ($1, $2)",
        monitor_id,
        MonitorState(status=status).to_json(),
    )


async def _check(site: Site, monitor_id: int, at: datetime, status: str, error: str | None = None) -> None:
    await site.pool.execute(
        """
        INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms, status_code, error_class, error)
        VALUES ($1, 'eu-west', $2, $3, 80, $4, $5, $6)
        """,
        monitor_id,
        at,
        status,
        200 if status == "up" else 503,
        "http_status" if error else None,
        error,
    )


def _settings(**values: Any) -> dict[str, Any]:
    """The settings form as a browser sends it; None leaves a field out (an unchecked box)."""
    fields = {"published": "on", "slug": "acme", "title": "Acme status", "monitor_ids": []} | values
    return {name: value for name, value in fields.items() if value is not None}


async def _public(site: Site, path: str = "/status/acme") -> str:
    answer = await site.client().get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


async def test_an_unpublished_or_unknown_page_is_the_same_404(site: Site, alice: Person) -> None:
    saved = await alice.post("/status-page", _settings(published=None))
    assert saved.status_code == 303
    settings = await alice.get("/status-page")
    assert "Not published" in settings.text

    stranger = site.client()
    unpublished = await stranger.get("/status/acme")
    unknown = await stranger.get("/status/nobody-here")
    malformed = await stranger.get("/status/Not_A_Slug")
    partial = await stranger.get("/status/acme/partial")
    for answer in (unpublished, unknown, malformed, partial):
        assert answer.status_code == 404
    assert unpublished.text == unknown.text == malformed.text


async def test_published_page_shows_only_chosen_monitors_and_nothing_private(site: Site, alice: Person) -> None:
    shop = await _monitor(site, alice, "Shop", "https://shop.secret-host.example/health?token=s3cr3t")
    api = await _monitor(site, alice, "Public API", "https://api.secret-host.example/")
    await _monitor(site, alice, "Internal DB", "https://db.secret-host.example/")
    await _state(site, shop, MonitorStatus.UP)
    await _state(site, api, MonitorStatus.DOWN)
    now = datetime.now(UTC)
    for days in range(5):
        await _check(site, shop, now - timedelta(days=days, minutes=1), "up")
    await _check(site, api, now - timedelta(minutes=3), "down", error="HTTP 503: upstream db-primary refused")
    await site.pool.execute(
        "INSERT INTO incidents (monitor_id, opened_at, cause) VALUES ($1, $2, $3)",
        api,
        now - timedelta(minutes=25),
        "HTTP 503 from eu-west: upstream db-primary refused",
    )

    saved = await alice.post("/status-page", _settings(monitor_ids=[str(shop), str(api)]))
    assert saved.status_code == 303
    settings = await alice.get("/status-page")
    assert "Status page saved and published." in settings.text
    assert 'href="/status/acme"' in settings.text  # a path: behind a proxy the absolute URL would be uptimed's own

    page = await _public(site)

    assert '<h1 class="status-title">Acme status</h1>' in page
    assert "Partial outage" in page and 'data-state="partial"' in page
    names = re.findall(r'<h2 class="status-name">([^<]*)</h2>', page)
    assert names == ["Shop", "Public API"]
    assert page.count('class="chart uptime-bars"') == 2
    assert "100%" in page  # Shop's 90 days: every check up
    assert 'data-status="up"' in page and 'data-status="down"' in page
    assert "Ongoing incident" in page and "25 min" in page
    for private in (
        "secret-host",
        "s3cr3t",
        "Internal DB",
        "db-primary",
        "HTTP 503",
        "alice",
        "alice@example.com",
        "/monitors/",
        "Sign out",
        "csrf",
    ):
        assert private not in page, private
    assert 'data-refresh="/status/acme/partial"' in page


async def test_the_public_page_refreshes_from_its_partial(site: Site, alice: Person) -> None:
    shop = await _monitor(site, alice, "Shop", "https://shop.example.com/")
    await _state(site, shop, MonitorStatus.DOWN)
    await alice.post("/status-page", _settings(monitor_ids=[str(shop)]))

    partial = await _public(site, "/status/acme/partial")

    assert "<html" not in partial
    assert "Major outage" in partial and "Shop" in partial and "shop.example.com" not in partial


async def test_signed_in_owner_sees_the_public_page_without_their_navigation(site: Site, alice: Person) -> None:
    shop = await _monitor(site, alice, "Shop", "https://shop.example.com/")
    await _state(site, shop, MonitorStatus.UP)
    await alice.post("/status-page", _settings(monitor_ids=[str(shop)]))

    page = await alice.get("/status/acme")

    assert page.status_code == 200
    assert "All systems operational" in page.text
    for private in ("Sign out", "alice", "csrf-token", "Integrations", "shop.example.com"):
        assert private not in page.text, private


async def test_a_slug_taken_by_another_user_is_refused(site: Site, alice: Person, bob: Person) -> None:
    await alice.post("/status-page", _settings())

    answer = await bob.post("/status-page", _settings(title="Bob's"))

    assert answer.status_code == 422
    error = re.search(r'<p class="field-error" id="slug-error">([^<]*)</p>', answer.text)
    assert error and error[1].startswith("taken")
    assert re.search(r'<input id="slug"[^>]*aria-invalid="true"', answer.text)
    assert await site.pool.fetchval("SELECT count(*) FROM status_pages WHERE owner_id = $1", bob.id) == 0
    assert (await alice.post("/status-page", _settings(title="Still mine"))).status_code == 303  # her own slug


async def test_a_bad_slug_or_title_is_refused_naming_the_field(site: Site, alice: Person) -> None:
    for slug in ("Acme", "-acme", "acme-", "a" * 65, "ac me", "", "acmé"):
        answer = await alice.post("/status-page", _settings(slug=slug))
        assert answer.status_code == 422, slug
        error = re.search(r'<p class="field-error" id="slug-error">([^<]*)</p>', answer.text)
        assert error and "lowercase letters, digits and hyphens" in error[1], slug
        assert '<a href="#slug">Address</a>' in answer.text
    untitled = await alice.post("/status-page", _settings(title="  "))
    assert untitled.status_code == 422
    assert 'id="title-error">a title is needed<' in untitled.text
    assert await site.pool.fetchval("SELECT count(*) FROM status_pages") == 0


async def test_other_users_monitors_cannot_be_put_on_a_page_and_deleted_ones_drop_out(
    site: Site, alice: Person, bob: Person
) -> None:
    bobs = await _monitor(site, bob, "Bob's secret", "https://bob.example.com/")
    shop = await _monitor(site, alice, "Shop", "https://shop.example.com/")
    gone = await _monitor(site, alice, "Old site", "https://old.example.com/")

    await alice.post("/status-page", _settings(monitor_ids=[str(bobs), str(shop), str(gone), "x"]))
    assert await site.pool.fetchval("SELECT monitor_ids FROM status_pages") == [shop, gone]
    await monitors.delete_owned(site.pool, alice.id, gone)

    page = await _public(site)
    assert re.findall(r'<h2 class="status-name">([^<]*)</h2>', page) == ["Shop"]
    assert "Bob" not in page
    settings = await alice.get("/status-page")
    assert f'value="{shop}" checked' in settings.text and "Old site" not in settings.text


async def test_status_settings_need_sign_in_and_the_csrf_token(site: Site, alice: Person) -> None:
    stranger = await site.client().get("/status-page")
    assert stranger.status_code == 303 and stranger.headers["location"] == "/login?next=/status-page"

    forged = await alice.client.post("/status-page", data={"csrf_token": "forged", **_settings()})
    assert forged.status_code == 403
    assert await site.pool.fetchval("SELECT count(*) FROM status_pages") == 0
