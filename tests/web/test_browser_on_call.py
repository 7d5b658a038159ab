"""On call in real Chromium (issue 17): acknowledging from the link an alert carries, then the incident's timeline.

The daemon runs with ``[api] public_url`` set, so its alerts carry links; the
link is taken from what the webhook receiver got, opened on a phone without
signing in, and acknowledged with its button. The incident's owner then
follows it on the desktop: the incidents page, the timeline, the recovery.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator

import asyncpg
import pytest
from playwright.async_api import Page, expect

from tests.support import Stack, Target, WebhookReceiver, to_toml
from tests.web.fixtures import PASSWORD
from tests.web.test_browser import Shoot, Uptimed, assert_labelled, monitor_toml, sign_in
from uptimed.passwords import hash_password
from uptimed.store import users


def free_port() -> int:
    """A port nothing listens on now: public_url must name the port before the daemon starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = await Target().start()
    yield server
    await server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


async def test_acknowledging_from_an_alerts_link_on_a_phone_then_the_timeline(
    page: Page,
    phone: Page,
    screenshot: Shoot,
    stack: Stack,
    start_daemon,
    target: Target,
    receiver: WebhookReceiver,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sections = stack.sections()
    sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": port, "page_refresh": 1, "public_url": base}
    sections["notify"] = {"delivery_timeout": 5}
    config = to_toml(sections) + "\n"
    config += monitor_toml("shop", target.url("/shop"), escalation_policy="ops").replace(
        "failure_threshold = 2", "failure_threshold = 1"
    )
    for key in ("oncall", "lead"):
        config += (
            f'[[integrations]]\nowner = "alice"\nkey = "{key}"\ntype = "webhook"\n'
            f'config = {{ webhookUrl = "{receiver.url("/" + key)}" }}\n'
        )
    config += (
        '[[escalation_policies]]\nowner = "alice"\nkey = "ops"\nname = "Ops on call"\n'
        '[[escalation_policies.steps]]\nname = "on call"\nafter = "0s"\nintegrations = ["oncall"]\n'
        '[[escalation_policies.steps]]\nname = "team lead"\nafter = "10m"\nintegrations = ["lead"]\n'
    )
    target.status = 500
    await start_daemon(config)
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=2)
    try:
        alice = await users.get_by_username(pool, "alice")
        assert alice is not None
        await users.set_password_hash(pool, alice.id, hash_password(PASSWORD))

        [alert] = await receiver.wait_for("/oncall", timeout=30)
        links = alert.json()["links"]
        assert links["acknowledge"].startswith(f"{base}/ack/") and links["monitor"].startswith(f"{base}/monitors/")

        # On call, on a phone, not signed in: the link shows the incident and a button, and nothing happens yet.
        await phone.goto(links["acknowledge"])
        await expect(phone.get_by_role("heading", name="shop is down")).to_be_visible()
        button = phone.get_by_role("button", name="Acknowledge")
        await expect(button).to_be_visible()
        await assert_labelled(phone)
        await screenshot(phone, "ack-link-phone")
        incident = alert.json()["data"]["incidentId"]
        assert await pool.fetchval("SELECT acknowledged_at FROM incidents WHERE id = $1", incident) is None
        await button.click()
        done = phone.get_by_role("status")
        await expect(done).to_contain_text("Acknowledged by the link sent to Webhook")
        await expect(done).to_contain_text("through this link")
        await expect(phone.get_by_role("button", name="Acknowledge")).to_have_count(0)
        await screenshot(phone, "ack-link-done-phone")
        await phone.reload()  # nothing is sent again
        await expect(done).to_contain_text("through this link")

        # Whoever was paged hears who took it (here: the link itself).
        await receiver.wait_for("/oncall", 2, timeout=15)
        assert receiver.to("/oncall")[1].json()["event"] == "incident.acknowledged"

        # The owner follows it on the desktop: the incidents page, then the timeline.
        uptimed = Uptimed(url=base, pool=pool)
        await sign_in(page, uptimed)
        await page.get_by_role("link", name="Incidents").click()
        row = page.locator(f'tr[data-incident-id="{incident}"]')
        await expect(row.get_by_text("Acknowledged")).to_be_visible()
        await assert_labelled(page)
        await screenshot(page, "incidents")
        await row.get_by_role("link", name=re.compile("Timeline")).click()
        await expect(page.get_by_role("heading", name=re.compile(r"Incident #\d+: .shop."))).to_be_visible()
        timeline = page.locator("#timeline")
        await expect(timeline.get_by_text("Step 1 of 2 (on call)")).to_be_visible()
        await expect(timeline.locator('[data-kind="notified"][data-step="1"]')).to_contain_text("SENT")
        await expect(timeline.locator('[data-kind="acknowledged"] .timeline-text')).to_have_text(
            re.compile(r"^\s*Acknowledged by the link sent to Webhook #\d+\s*$")
        )
        await expect(page.get_by_role("button", name="Withdraw acknowledgement")).to_be_visible()
        await screenshot(page, "incident-timeline")

        # Back up: the timeline ends with the resolution and says how long it lasted.
        target.status = 200
        await receiver.wait_for("/oncall", 3, timeout=30)
        await page.reload()
        await expect(timeline.locator('[data-kind="resolved"]')).to_contain_text("Up again")
        await expect(page.locator("#incident-state")).to_contain_text("Resolved")
        await expect(page.get_by_role("button", name="Withdraw acknowledgement")).to_have_count(0)
        assert receiver.to("/lead") == []  # acknowledged before step 2: the team lead was never paged
        await screenshot(page, "incident-timeline-resolved")
    finally:
        await pool.close()


async def test_an_escalation_policy_made_in_its_form_and_chosen_for_a_monitor(
    page: Page, screenshot: Shoot, stack: Stack, start_daemon, target: Target, receiver: WebhookReceiver
) -> None:
    port = free_port()
    sections = stack.sections()
    sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": port, "page_refresh": 1}
    config = to_toml(sections) + "\n" + monitor_toml("shop", target.url("/shop"))
    for key in ("oncall", "lead"):
        config += (
            f'[[integrations]]\nowner = "alice"\nkey = "{key}"\ntype = "webhook"\n'
            f'config = {{ webhookUrl = "{receiver.url("/" + key)}" }}\n'
        )
    await start_daemon(config)
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=2)
    try:
        alice = await users.get_by_username(pool, "alice")
        assert alice is not None
        await users.set_password_hash(pool, alice.id, hash_password(PASSWORD))
        hooks = [r["id"] for r in await pool.fetch("SELECT id FROM integrations ORDER BY config_key DESC")]
        uptimed = Uptimed(url=f"http://127.0.0.1:{port}", pool=pool)
        await sign_in(page, uptimed)

        await page.get_by_role("link", name="Escalation").click()
        await expect(page.get_by_text("No escalation policies yet")).to_be_visible()
        await page.get_by_role("link", name="Add policy").first.click()
        await page.get_by_label("Name", exact=True).fill("Ops on call")
        first = page.locator("#step-0")
        await first.get_by_label("After").fill("0s")
        await first.get_by_label(f"Webhook #{hooks[0]}").check()
        await page.get_by_role("button", name="Add a step").click()  # one more step, nothing saved yet
        second = page.locator("#step-1")
        await expect(second).to_be_visible()
        await expect(first.get_by_label(f"Webhook #{hooks[0]}")).to_be_checked()  # kept
        await second.get_by_label("After").fill("5m")
        await second.get_by_label("Step name").fill("team lead")
        await second.get_by_label(f"Webhook #{hooks[1]}").check()
        await page.get_by_label("Repeat the last step every").fill("15m")
        await assert_labelled(page)
        await screenshot(page, "escalation-policy-form")
        await page.get_by_role("button", name="Save").click()

        await expect(page.get_by_role("status")).to_contain_text("Saved the escalation policy “Ops on call”")
        policy = page.locator("section.policy")
        await expect(policy.get_by_text("After 5m (team lead)")).to_be_visible()
        await expect(policy.get_by_text("The last step again every 15m")).to_be_visible()
        await screenshot(page, "escalation-policies")

        # A monitor made on the pages uses it.
        await page.goto(uptimed.at("/monitors/new"))
        await page.get_by_label("Name", exact=True).fill("api")
        await page.get_by_label("Target").fill(target.url("/api"))
        await page.get_by_label("Escalation policy").select_option(label="Ops on call")
        await page.get_by_role("button", name="Save").click()
        await expect(page.get_by_role("heading", name="api")).to_be_visible()
        await page.goto(uptimed.at("/escalation-policies"))
        await expect(policy.get_by_role("link", name="api")).to_be_visible()
    finally:
        await pool.close()
