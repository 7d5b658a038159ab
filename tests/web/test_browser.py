"""The web pages in real Chromium against a running `uptimed run`: what a user clicks and sees.

Each test starts the daemon (API and pages on a free port, the whole
pipeline behind them) with local targets and a local webhook receiver, signs
in through the sign-in form, and saves a screenshot of every page it visits
under .data/screenshots/.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.support import Stack, Target, WebhookReceiver, to_toml
from tests.web.fixtures import PASSWORD
from uptimed.passwords import hash_password
from uptimed.store import users

Shoot = Callable[[Page, str], Awaitable[Path]]

# Down after 2 failed checks a second apart, plus a 1 s page refresh: well inside this.
STATUS_CHANGE_MS = 30_000


@dataclass
class Uptimed:
    url: str
    pool: asyncpg.Pool

    def at(self, path: str) -> str:
        return self.url + path


def monitor_toml(name: str, target: str, **extra: object) -> str:
    lines = [
        "[[monitors]]",
        'owner = "alice"',
        f'name = "{name}"',
        f'target = "{target}"',
        'interval = "1s"',
        'timeout = "1s"',
        "failure_threshold = 2",
        "success_threshold = 2",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def launch(stack: Stack, start_daemon, browser: Browser) -> AsyncIterator[Callable[[str], Awaitable[Uptimed]]]:
    """``await launch(extra_toml)``: alice (with a password) and `uptimed run` serving its pages."""
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=2)

    async def start(extra: str = "") -> Uptimed:
        sections = stack.sections()
        sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": 0, "page_refresh": 1}
        sections["notify"] = {"delivery_timeout": 5}
        daemon = await start_daemon(to_toml(sections) + "\n" + extra, wait_ready=False)
        listening = await daemon.wait_for("api.listening")
        await daemon.wait_for("daemon.ready")
        alice = await users.get_by_username(pool, "alice") or await users.create(pool, "alice", "alice@example.com")
        await users.set_password_hash(pool, alice.id, hash_password(PASSWORD))
        return Uptimed(url=f"http://127.0.0.1:{listening['port']}", pool=pool)

    yield start
    # The pages close before the daemon stops: a page that refreshes itself would
    # otherwise find the server gone mid-request and report a reset connection.
    for context in browser.contexts:
        await context.close()
    await pool.close()


# Visible form controls that a screen reader could not name.
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(e => e.getClientRects().length > 0)
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby') && !(e.tagName === 'BUTTON' && e.textContent.trim()))
  .map(e => e.outerHTML.slice(0, 160))"""


async def assert_labelled(page: Page) -> None:
    assert await page.evaluate(UNLABELLED) == [], f"unlabelled controls on {page.url}"


async def tab_to(page: Page, name: str, *, presses: int = 40) -> None:
    """Press Tab until the focused element is the one named ``name`` (a keyboard-only user's way)."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement.textContent.trim()") == name:
            return
    raise AssertionError(f"{name!r} cannot be reached with Tab on {page.url}")


async def add_history(uptimed: Uptimed, name: str, *, hours: int) -> None:
    """Checks of monitor ``name`` every 2 minutes over the past ``hours``: a monitor that has been around."""
    await uptimed.pool.execute(
        """
        INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms, status_code)
        SELECT m.id, 'default', now() - make_interval(mins => n * 2), 'up',
               40 + 25 * sin(n / 9.0) + (n % 7) * 3, 200
        FROM monitors m, generate_series(1, $2 * 30) AS n
        WHERE m.name = $1
        """,
        name,
        hours,
    )


async def sign_in(page: Page, uptimed: Uptimed, shoot: Shoot | None = None) -> None:
    await page.goto(uptimed.at("/"))
    await expect(page).to_have_url(re.compile(r"/login$"))
    await assert_labelled(page)
    if shoot:
        await shoot(page, "sign-in")
    await page.get_by_label("Username").fill("alice")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Monitors", exact=True)).to_be_visible()


async def test_add_a_webhook_integration_name_it_send_a_test_see_it_fail_toggle_and_delete_it(
    page: Page, page_errors: list[str], screenshot: Shoot, launch: Callable[[str], Awaitable[Uptimed]]
) -> None:
    receiver = await WebhookReceiver().start()
    try:
        uptimed = await launch("")
        await sign_in(page, uptimed, screenshot)
        await expect(page.get_by_text("No monitors yet")).to_be_visible()
        await screenshot(page, "dashboard-empty")

        await page.get_by_role("link", name="Integrations").click()
        # The dialog works from the keyboard: Tab to its button, Enter opens it, Escape closes it.
        dialog = page.get_by_role("dialog", name="Add integration")
        await tab_to(page, "Add integration")
        await page.keyboard.press("Enter")
        await expect(dialog).to_be_visible()
        assert await page.evaluate("() => document.activeElement.closest('dialog') !== null")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()

        await page.get_by_role("button", name="Add integration").click()
        await expect(dialog).to_be_visible()
        await dialog.get_by_label("Type").select_option("webhook")
        # Only the chosen type's fields are shown.
        await expect(dialog.get_by_role("group", name="Slack settings")).to_be_hidden()
        settings = dialog.get_by_role("group", name="Webhook settings")
        await dialog.get_by_label("Name", exact=True).fill("Ops hook")
        await settings.get_by_label("Webhook URL").fill(receiver.url("/hook/secret-path-token"))
        await settings.get_by_label("Timeout").fill("500")
        await dialog.get_by_role("button", name="Save integration").click()
        # Refused, in plain words: the dialog is open again with everything that was typed, the URL too.
        await expect(dialog).to_be_visible()
        await expect(dialog.get_by_role("alert")).to_contain_text("Check Timeout")
        await expect(dialog.locator("#webhook-timeout-error")).to_have_text("must be at most 120")
        await expect(settings.get_by_label("Webhook URL")).to_have_value(receiver.url("/hook/secret-path-token"))
        await expect(dialog.get_by_label("Name", exact=True)).to_have_value("Ops hook")
        await screenshot(page, "integrations-dialog-refused")
        assert [e for e in page_errors if "422" not in e] == []  # the refused form's answer is a 422, as it should
        page_errors.clear()
        await settings.get_by_label("Timeout").fill("10")
        await assert_labelled(page)
        await screenshot(page, "integrations-add-dialog")
        await dialog.get_by_role("button", name="Save integration").click()

        await expect(page.locator("p.notice")).to_have_text("Integration “Ops hook” added.")
        card = page.get_by_role("article", name="Ops hook")
        await expect(card).to_have_count(1)
        await expect(card.locator(".integration-type")).to_have_text(re.compile(r"^Webhook #\d+$"))
        await expect(card.locator("[data-state]")).to_have_text(re.compile("Active"))
        await expect(card.locator(".last-delivery")).to_have_text("No deliveries yet.")
        # The URL is a secret: the page shows only its end.
        assert "secret-path-token" not in await page.content()

        # Edit it: the stored URL is not on the page and stays unless a new one is typed.
        await card.get_by_role("link", name="Edit Ops hook").click()
        await expect(page.get_by_label("Webhook URL")).to_have_value("")
        await page.get_by_label("Timeout").fill("5")
        await assert_labelled(page)
        await screenshot(page, "integration-edit")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("p.notice")).to_have_text("Integration “Ops hook” saved.")
        config = await uptimed.pool.fetchval("SELECT config FROM integrations")
        assert '"timeout": 5' in config and "secret-path-token" in config

        await card.get_by_role("button", name="Send test").click()
        await expect(card.get_by_role("status")).to_have_text(re.compile("Test delivered"))
        delivered = await receiver.wait_for("/hook/secret-path-token")
        body = delivered[0].json()
        assert (body["event"], body["status"], body["data"]["name"]) == ("test", "test", "Ops hook")

        # Two of its last three deliveries failed: the card says so, and leads to those rows of the log.
        hook_id = await uptimed.pool.fetchval("SELECT id FROM integrations")
        user_id = await uptimed.pool.fetchval("SELECT id FROM users WHERE username = 'alice'")
        for status, error in (("SENT", None), ("FAILED", "HTTP 410: gone"), ("FAILED", "HTTP 410: gone")):
            await uptimed.pool.execute(
                """
                INSERT INTO notification_log (event_id, event_type, integration_id, user_id, status, attempts,
                                              payload, error_message)
                VALUES (gen_random_uuid(), 'website.down', $1, $2, $3, 1, '{}', $4)
                """,
                hook_id,
                user_id,
                status,
                error,
            )
        await page.reload()
        await expect(card.locator("[data-state]")).to_have_text(re.compile("Failing"))
        warning = card.get_by_role("link", name="2 of the last 3 deliveries failed")
        await expect(card.locator(".last-delivery")).to_contain_text("FAILED")
        await expect(card.locator(".last-delivery")).to_contain_text("HTTP 410: gone")
        await screenshot(page, "integrations")
        await warning.click()
        await expect(page).to_have_url(re.compile(rf"/notifications\?integration={hook_id}&status=FAILED$"))
        await expect(page.locator("tr[data-notification-id]")).to_have_count(2)
        await expect(page.locator("tr[data-notification-id]").first).to_contain_text("Ops hook")
        await page.get_by_role("link", name="Integrations").click()

        await card.get_by_role("button", name="Disable").click()
        await expect(card.locator("[data-state]")).to_have_text(re.compile("Disabled"))
        assert await uptimed.pool.fetchval("SELECT enabled FROM integrations") is False

        await card.get_by_role("button", name="Delete").click()
        confirm = page.get_by_role("dialog", name="Are you sure?")
        await expect(confirm).to_be_visible()
        await confirm.get_by_role("button", name="Delete").click()
        await expect(page.get_by_role("article", name="Ops hook")).to_have_count(0)
        assert await uptimed.pool.fetchval("SELECT count(*) FROM integrations") == 0
    finally:
        await receiver.stop()


async def test_a_monitor_turns_red_on_the_dashboard_when_its_target_goes_down_and_green_when_it_is_back(
    page: Page, phone: Page, screenshot: Shoot, launch: Callable[[str], Awaitable[Uptimed]]
) -> None:
    shop, blog = await Target(status=200).start(), await Target(status=200).start()
    receiver = await WebhookReceiver().start()
    try:
        uptimed = await launch(
            monitor_toml("Shop", shop.url("/health"))
            + monitor_toml("Blog", blog.url("/"))
            + monitor_toml("Search API", blog.url("/search"), slow_threshold_ms=1)
            + f'[[integrations]]\nowner = "alice"\nkey = "ops"\ntype = "webhook"\n'
            f'config = {{ webhookUrl = "{receiver.url("/ops")}" }}\n'
        )
        await add_history(uptimed, "Blog", hours=6)
        await sign_in(page, uptimed)
        # Six hours of history draw the blog's sparkline as one unbroken line over every bucket.
        blog_row = page.locator("tr.monitor-row", has=page.get_by_role("link", name="Blog", exact=True))
        points = await blog_row.locator("svg polyline").get_attribute("points")
        assert points is not None and len(points.split()) >= 30
        shop_row = page.locator("tr.monitor-row", has=page.get_by_role("link", name="Shop", exact=True))
        await expect(shop_row.locator(".badge")).to_have_text(re.compile("Up"), timeout=STATUS_CHANGE_MS)

        shop.status = 500
        await expect(shop_row.locator(".badge")).to_have_text(re.compile("Down"), timeout=STATUS_CHANGE_MS)
        await expect(shop_row).to_contain_text("down for")
        # Down first: what needs attention leads the table.
        await expect(page.locator("tr.monitor-row").first).to_contain_text("Shop")
        await screenshot(page, "dashboard")

        await sign_in(phone, uptimed)
        await expect(phone.locator("tr.monitor-row").first.locator(".badge")).to_have_text(re.compile("Down"))
        await screenshot(phone, "dashboard-phone")

        shop.status = 200
        await expect(shop_row.locator(".badge")).to_have_text(re.compile("Up"), timeout=STATUS_CHANGE_MS)

        await shop_row.get_by_role("link", name="Shop").click()
        await expect(page.get_by_role("heading", name="Shop", exact=True)).to_be_visible()
        await expect(page.locator("tr.incident-row")).to_have_count(1)
        await expect(page.locator("#response-chart svg")).to_be_visible()
        await screenshot(page, "monitor")
        await page.goto(uptimed.at("/monitors/new"))
        await expect(page.get_by_role("heading", name="New monitor")).to_be_visible()
        await assert_labelled(page)
        await screenshot(page, "monitor-new")

        await receiver.wait_for("/ops", 2)  # the down and the up notification
        await page.get_by_role("link", name="Notifications").click()
        shop_rows = page.locator("tr[data-notification-id]", has_text="Shop")
        await expect(shop_rows).to_have_count(2, timeout=STATUS_CHANGE_MS)
        await expect(shop_rows.locator('[data-status="SENT"]')).to_have_count(2)
        await screenshot(page, "notifications")
    finally:
        await receiver.stop()
        await shop.stop()
        await blog.stop()


async def test_the_public_status_page_opens_signed_out_and_shows_only_what_was_chosen(
    page: Page, browser: Browser, screenshot: Shoot, launch: Callable[[str], Awaitable[Uptimed]]
) -> None:
    shop = await Target(status=200).start()
    try:
        uptimed = await launch(
            monitor_toml("Shop", shop.url("/health")) + monitor_toml("Internal admin", shop.url("/admin"))
        )
        await sign_in(page, uptimed)
        await page.get_by_role("link", name="Status page").click()
        await page.get_by_label("Publish the status page").check()
        await page.get_by_label("Address").fill("acme")
        await page.get_by_label("Title").fill("Acme status")
        await page.get_by_role("group", name="Monitors shown").get_by_label("Shop").check()
        await assert_labelled(page)
        await page.get_by_role("button", name="Save").click()
        # The address as this browser reached uptimed (app.js fills it in from the relative link).
        await expect(page.locator("#public-url a")).to_have_text(uptimed.at("/status/acme"))
        await screenshot(page, "status-page-settings")

        stranger = await browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            public = await stranger.new_page()
            await public.goto(uptimed.at("/status/acme"))
            await expect(public.get_by_role("heading", name="Acme status")).to_be_visible()
            await expect(public.locator("li.status-item")).to_have_count(1)
            await expect(public.locator("li.status-item")).to_contain_text("Shop")
            await expect(public.locator("svg.uptime-bars")).to_have_count(1)
            content = await public.content()
            assert "Internal admin" not in content
            assert shop.url("/health") not in content and "alice" not in content
            await screenshot(public, "status-page")

            missing = await public.goto(uptimed.at("/status/no-such-page"))
            assert missing is not None and missing.status == 404
        finally:
            await stranger.close()
    finally:
        await shop.stop()


async def test_the_api_docs_render_without_internet(
    page: Page, screenshot: Shoot, launch: Callable[[str], Awaitable[Uptimed]]
) -> None:
    uptimed = await launch("")
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(uptimed.url) else outside.append(request.url))
    await page.goto(uptimed.at("/docs"))
    await expect(page.get_by_role("heading", name=re.compile("^uptimed"))).to_be_visible()
    await expect(page.get_by_text("/api/v1/monitors", exact=True).first).to_be_visible()
    await screenshot(page, "api-docs")
    assert outside == []


async def test_the_dashboard_filters_by_tag_and_status_and_searches_and_a_phone_sees_incidents_before_checks(
    page: Page, phone: Page, screenshot: Shoot, launch: Callable[[str], Awaitable[Uptimed]]
) -> None:
    target = await Target(status=200).start()
    try:
        uptimed = await launch(
            monitor_toml("Shop", target.url("/shop"), tags=["eu", "payments"])
            + monitor_toml("Blog", target.url("/blog"), tags=["us"])
            + monitor_toml("Search API", target.url("/search"), tags=["eu"], enabled=False)
        )
        await sign_in(page, uptimed)
        rows = page.locator("tr.monitor-row")
        await expect(rows).to_have_count(3)
        await expect(rows.filter(has_text="Shop").locator(".tag")).to_have_text(["eu", "payments"])

        filters = page.get_by_role("search", name="Filter monitors")
        await filters.get_by_label("Tag").select_option("eu")
        await filters.get_by_role("button", name="Filter").click()
        await expect(page).to_have_url(re.compile(r"[?&]tag=eu"))
        await expect(rows).to_have_count(2)
        await expect(rows.filter(has_text="Blog")).to_have_count(0)
        await filters.get_by_label("Status").select_option("paused")
        await filters.get_by_role("button", name="Filter").click()
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("Search API")
        await assert_labelled(page)

        await filters.get_by_role("link", name="Clear filters").click()
        await filters.get_by_label("Search").fill("BLOG")  # name or URL, in any case
        await filters.get_by_role("button", name="Filter").click()
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("Blog")
        await screenshot(page, "dashboard-filtered")
        # The page refreshes itself with the same filters.
        await expect(page.locator("#monitors")).to_have_attribute("data-refreshed-at", re.compile("."), timeout=5000)
        await expect(rows).to_have_count(1)
        # A tag on a row is a link to that filter.
        await filters.get_by_role("link", name="Clear filters").click()
        await rows.filter(has_text="Shop").get_by_role("link", name="payments").click()
        await expect(rows).to_have_count(1)
        await filters.get_by_label("Search").fill("no such monitor")
        await filters.get_by_role("button", name="Filter").click()
        await expect(page.get_by_text("No monitors match these filters")).to_be_visible()

        # On a phone the incidents come before the long check log.
        shop_id = await uptimed.pool.fetchval("SELECT id FROM monitors WHERE name = 'Shop'")
        await uptimed.pool.execute(
            "INSERT INTO incidents (monitor_id, opened_at, resolved_at, cause) VALUES"
            " ($1, now() - interval '2 hours', now() - interval '1 hour', 'HTTP 503')",
            shop_id,
        )
        await add_history(uptimed, "Shop", hours=2)
        await sign_in(phone, uptimed)
        await phone.goto(uptimed.at(f"/monitors/{shop_id}"))
        incidents = await phone.locator("#incidents").bounding_box()
        checks = await phone.locator("#checks").bounding_box()
        assert incidents is not None and checks is not None
        assert incidents["y"] < checks["y"]
        assert incidents["y"] < 2000  # within a few screens, not below 50 checks
        assert await phone.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        await screenshot(phone, "monitor-phone")
    finally:
        await target.stop()


async def test_maintenance_planned_in_the_form_shows_on_the_dashboard_and_the_status_page(
    page: Page, browser: Browser, screenshot: Shoot, launch: Callable[[str], Awaitable[Uptimed]]
) -> None:
    target = await Target(status=200).start()
    try:
        uptimed = await launch(
            monitor_toml("Shop", target.url("/shop")) + monitor_toml("Database", target.url("/db"), tags=["db"])
        )
        await sign_in(page, uptimed)
        await page.get_by_role("link", name="Maintenance").click()
        await expect(page.get_by_text("No maintenance planned")).to_be_visible()
        await page.get_by_role("link", name="Plan maintenance").click()
        await page.get_by_label("Name").fill("Deploy")
        await page.get_by_label("Once").check()
        now = await uptimed.pool.fetchval("SELECT now() AT TIME ZONE 'UTC'")
        await page.get_by_label("Time zone").select_option("UTC")
        await page.get_by_label("Starts").fill((now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
        await page.get_by_label("Ends").fill((now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
        await page.get_by_role("group", name="Monitors").get_by_label("Shop").check()
        await assert_labelled(page)
        await screenshot(page, "maintenance-form")
        await page.get_by_role("button", name="Save").click()
        await expect(page.locator("p.notice")).to_contain_text("Planned “Deploy”")

        # A weekly one for the tagged database, every day two hours from now: upcoming.
        await page.get_by_role("link", name="Plan maintenance").click()
        await page.get_by_label("Name").fill("Backups")
        await page.get_by_label("Every week").check()
        for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"):
            await page.get_by_role("group", name="Days (every week)").get_by_label(day).check()
        await page.get_by_label("At", exact=True).fill((now + timedelta(hours=2)).strftime("%H:%M"))
        await page.get_by_label("Duration").fill("30m")
        await page.get_by_label("Time zone").select_option("UTC")
        await page.get_by_label("Tags").fill("db")
        await page.get_by_role("button", name="Save").click()
        table = page.locator("#maintenance-windows")
        await expect(table.locator("tr.maintenance-row")).to_have_count(2)
        await expect(table.locator("tr.ongoing")).to_contain_text("Deploy")
        await screenshot(page, "maintenance")

        await page.get_by_role("link", name="Dashboard").click()
        panel = page.locator("#maintenance-now")
        await expect(panel.locator("li.ongoing")).to_contain_text("Deploy")
        await expect(panel.locator("li", has_text="Backups")).to_contain_text("Upcoming")
        shop_row = page.locator("tr.monitor-row", has=page.get_by_role("link", name="Shop", exact=True))
        await expect(shop_row.locator('[data-status="maintenance"]')).to_be_visible()
        await expect(page.locator(".uptime-note")).to_have_text("Uptime leaves maintenance out.")
        await screenshot(page, "dashboard-maintenance")

        await page.get_by_role("link", name="Status page").click()
        await page.get_by_label("Publish the status page").check()
        await page.get_by_label("Address").fill("acme")
        await page.get_by_label("Title").fill("Acme status")
        await page.get_by_role("group", name="Monitors shown").get_by_label("Shop").check()
        await page.get_by_role("button", name="Save").click()
        stranger = await browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            public = await stranger.new_page()
            await public.goto(uptimed.at("/status/acme"))
            await expect(public.locator("#overall")).to_have_attribute("data-state", "maintenance")
            await expect(public.locator("#overall")).to_contain_text("Maintenance in progress")
            await expect(public.locator("#status-maintenance")).to_contain_text("Deploy")
            await expect(public.locator("#status-maintenance")).not_to_contain_text("Backups")  # not on this page
            await expect(public.locator("#incident-history")).to_contain_text("No incidents in the last 90 days")
            title = await public.locator("svg.uptime-bars rect").last.locator("title").text_content()
            assert title is not None and re.match(r"^\d{4}-\d\d-\d\d: ", title) and "incident" in title
            await screenshot(public, "status-page-maintenance")
        finally:
            await stranger.close()
    finally:
        await target.stop()
