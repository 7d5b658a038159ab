"""Pages for daily use, over the real PostgreSQL: the monitor form's tags and routing, maintenance, preferences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.web.fixtures import Person, Site
from tests.web.test_monitor_pages import _form
from uptimed.store import integrations


async def test_the_monitor_form_sets_tags_and_the_integrations_it_notifies(
    site: Site, alice: Person, bob: Person
) -> None:
    ops = await integrations.create(site.pool, alice.id, "webhook", {"webhookUrl": "https://hooks.example/ops"})
    mail = await integrations.create(site.pool, alice.id, "email", {"email": "me@example.com"}, name="Me")
    bobs = await integrations.create(site.pool, bob.id, "email", {"email": "bob@example.com"})

    form = (await alice.get("/monitors/new")).text
    assert "> Webhook to hooks.example</label>" in form and "> Me</label>" in form
    assert "bob@example.com" not in form

    created = await alice.post(
        "/monitors", [*_form({"tags": "eu, payments, eu"}), ("notify", "chosen"), ("integrations", str(mail.id))]
    )
    assert created.status_code == 303
    monitor_id = int(created.headers["location"].rsplit("/", 1)[1])
    row = await site.pool.fetchrow("SELECT tags, notify_integrations FROM monitors WHERE id = $1", monitor_id)
    assert (list(row["tags"]), list(row["notify_integrations"])) == (["eu", "payments"], [mail.id])
    page = (await alice.get(f"/monitors/{monitor_id}")).text
    assert "<title>shop · uptimed</title>" in page
    assert page.count('id="badges"') == 1
    assert '<dd id="monitor-notifies">Me</dd>' in page
    assert 'href="/?tag=payments"' in page

    edit = (await alice.get(f"/monitors/{monitor_id}/edit")).text
    assert 'value="eu, payments"' in edit
    assert f'name="integrations" value="{mail.id}" checked' in edit
    assert f'name="integrations" value="{ops.id}" checked' not in edit

    # Another user's integration is refused beside the field; all of them again is the default.
    refused = await alice.post(
        f"/monitors/{monitor_id}/edit", [*_form({}), ("notify", "chosen"), ("integrations", str(bobs.id))]
    )
    assert refused.status_code == 422
    assert f"you have no integration #{bobs.id}" in refused.text
    saved = await alice.post(f"/monitors/{monitor_id}/edit", [*_form({}), ("notify", "all")])
    assert saved.status_code == 303
    assert await site.pool.fetchval("SELECT notify_integrations FROM monitors WHERE id = $1", monitor_id) is None
    bad_tag = await alice.post("/monitors", _form({"tags": "ok, #no"}))
    assert bad_tag.status_code == 422 and "has characters that are not allowed here" in bad_tag.text


async def test_a_maintenance_form_names_each_problem_beside_its_field(site: Site, alice: Person) -> None:
    missing = await alice.post("/maintenance", {"name": "", "kind": "weekly", "days": ["sun"], "time_zone": "UTC"})
    assert missing.status_code == 422
    assert "Name: must not be empty" in missing.text
    no_time = await alice.post("/maintenance", {"name": "x", "kind": "weekly", "days": ["sun"], "tags": "db"})
    assert no_time.status_code == 422
    assert "At: a weekly window needs days and the time it starts (at)" in no_time.text

    bad_zone = await alice.post(
        "/maintenance",
        {"name": "x", "kind": "cron", "cron": "0 2 * * *", "duration": "1h", "time_zone": "Mars/Olympus",
         "all_monitors": "on"},
    )  # fmt: skip
    assert bad_zone.status_code == 422 and "unknown time zone &#39;Mars/Olympus&#39;" in bad_zone.text

    now = datetime.now(UTC)
    saved = await alice.post(
        "/maintenance",
        {
            "name": "move",
            "kind": "once",
            "start": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "end": (now + timedelta(days=1, hours=2)).strftime("%Y-%m-%dT%H:%M"),
            "time_zone": "Europe/Berlin",
            "all_monitors": "on",
        },
    )
    assert saved.status_code == 303
    listing = (await alice.get("/maintenance")).text
    assert "move" in listing and "(Europe/Berlin)" in listing and "next" in listing
    window_id = await site.pool.fetchval("SELECT id FROM maintenance_windows")
    edit = (await alice.get(f"/maintenance/{window_id}/edit")).text
    assert 'value="Europe/Berlin" selected' in edit
    assert (await alice.post(f"/maintenance/{window_id}/delete")).status_code == 303
    assert await site.pool.fetchval("SELECT count(*) FROM maintenance_windows") == 0


async def test_times_follow_the_chosen_zone_else_the_browsers(site: Site, alice: Person) -> None:
    await site.pool.execute(
        "INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s) VALUES ($1, 'm', 'https://m/', 60, 10)",
        alice.id,
    )
    await site.pool.execute(
        "INSERT INTO incidents (monitor_id, opened_at, cause) SELECT id, TIMESTAMPTZ '2026-01-15 12:00:00+00', 'x'"
        " FROM monitors"
    )
    monitor_id = await site.pool.fetchval("SELECT id FROM monitors")
    page = (await alice.get(f"/monitors/{monitor_id}")).text
    assert "2026-01-15 12:00:00 UTC" in page  # no choice, no browser zone: UTC

    alice.client.cookies.set("uptimed_tz", "America/New_York")
    page = (await alice.get(f"/monitors/{monitor_id}")).text
    assert "2026-01-15 07:00:00 EST" in page and 'title="2026-01-15T12:00:00+00:00"' in page

    refused = await alice.post("/preferences", {"time_zone": "Atlantis/Capital"})
    assert refused.status_code == 422 and "is not a time zone" in refused.text
    assert (await alice.post("/preferences", {"time_zone": "Asia/Tokyo"})).status_code == 303
    page = (await alice.get(f"/monitors/{monitor_id}")).text
    assert "2026-01-15 21:00:00 JST" in page  # the choice wins over the browser's
    preferences = (await alice.get("/preferences")).text
    assert 'value="Asia/Tokyo" selected' in preferences and "My browser's (America/New_York)" in preferences
