"""``/notifications``: the delivery log with its badges, filters and pages; only the user's own rows."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from tests.web.fixtures import Person, Site
from uptimed.monitor import MonitorFields
from uptimed.store import integrations, monitors

LONG_ERROR = "connection failed (ConnectError: " + "the receiver closed the connection " * 5 + ")"


async def log_row(
    site: Site,
    person: Person,
    integration_id: int,
    *,
    status: str = "SENT",
    event: str = "website.down",
    monitor_id: int | None = None,
    attempts: int = 1,
    error: str | None = None,
    next_attempt: datetime | None = None,
) -> int:
    """A notification_log row as the notifier would have left it."""
    return await site.pool.fetchval(
        """
        INSERT INTO notification_log (event_id, event_type, integration_id, user_id, monitor_id, status, attempts,
                                      error_message, next_attempt_at, payload)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, now()), '{}')
        RETURNING id
        """,
        uuid.uuid4(),
        event,
        integration_id,
        person.id,
        monitor_id,
        status,
        attempts,
        error,
        next_attempt,
    )


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-notification-id="(\d+)"', html)]


def row_html(html: str, row_id: int) -> str:
    return html.split(f'data-notification-id="{row_id}"')[1].split("</tr>")[0]


async def test_the_log_shows_each_delivery_with_its_badges_newest_first(site: Site, alice: Person) -> None:
    hook = await integrations.create(site.pool, alice.id, "webhook", {"webhookUrl": "https://hooks.example/a"})
    shop = await monitors.create(site.pool, alice.id, MonitorFields(name="shop", target="https://shop.example/"))
    retry_at = datetime.now(UTC) + timedelta(minutes=5)
    sent = await log_row(site, alice, hook.id, monitor_id=shop.id)
    retrying = await log_row(
        site,
        alice,
        hook.id,
        status="RETRYING",
        event="website.up",
        monitor_id=shop.id,
        attempts=2,
        error="HTTP 503: nope",
        next_attempt=retry_at,
    )
    failed = await log_row(
        site, alice, hook.id, status="FAILED", event="website.slow", monitor_id=9999, attempts=5, error=LONG_ERROR
    )

    html = (await alice.get("/notifications")).text

    assert row_ids(html) == [failed, retrying, sent]
    first = row_html(html, sent)
    assert f'<a href="/monitors/{shop.id}">shop</a>' in first
    assert "Webhook to hooks.example" in first
    assert 'data-status="SENT"' in first and "✓</span> SENT" in first
    assert "▼</span> Down" in first
    second = row_html(html, retrying)
    assert "↻</span> RETRYING" in second and "HTTP 503: nope" in second
    assert retry_at.strftime("%Y-%m-%d %H:%M") in second  # when the next attempt is due
    assert '<td data-label="Attempts" class="num">2</td>' in second
    third = row_html(html, failed)
    assert "✕</span> FAILED" in third and "deleted monitor #9999" in third
    assert "<details><summary>" in third and LONG_ERROR in third  # cut short, the whole text one click away
    assert '<td data-label="Next attempt">—</td>' in third


async def test_filters_by_status_and_integration(site: Site, alice: Person) -> None:
    hook = await integrations.create(site.pool, alice.id, "webhook", {"webhookUrl": "https://hooks.example/a"})
    mail = await integrations.create(site.pool, alice.id, "email", {"email": "ops@example.com"})
    hook_sent = await log_row(site, alice, hook.id)
    hook_failed = await log_row(site, alice, hook.id, status="FAILED", error="HTTP 410: gone")
    mail_failed = await log_row(site, alice, mail.id, status="FAILED", error="SMTP 550")

    failed = (await alice.get("/notifications", params={"status": "FAILED"})).text
    by_mail = (await alice.get("/notifications", params={"integration": mail.id})).text
    both = (await alice.get("/notifications", params={"status": "FAILED", "integration": hook.id})).text
    unfiltered = (await alice.get("/notifications", params={"status": "", "integration": ""})).text

    assert row_ids(failed) == [mail_failed, hook_failed]
    assert '<option value="FAILED" selected>' in failed
    assert row_ids(by_mail) == [mail_failed]
    assert f'<option value="{mail.id}" selected>Email to ops@example.com</option>' in by_mail
    assert row_ids(both) == [hook_failed]
    assert row_ids(unfiltered) == [mail_failed, hook_failed, hook_sent]
    assert "Clear filters" in failed and "Clear filters" not in unfiltered
    nothing = (await alice.get("/notifications", params={"status": "RETRYING"})).text
    assert row_ids(nothing) == [] and "No notifications match these filters" in nothing


async def test_a_filter_that_cannot_apply_is_left_out_with_a_message(site: Site, alice: Person, bob: Person) -> None:
    hook = await integrations.create(site.pool, alice.id, "webhook", {"webhookUrl": "https://hooks.example/a"})
    bobs = await integrations.create(site.pool, bob.id, "email", {"email": "bob@example.com"})
    mine = await log_row(site, alice, hook.id)
    await log_row(site, bob, bobs.id)

    unknown_status = await alice.get("/notifications", params={"status": "LOST"})
    not_mine = await alice.get("/notifications", params={"integration": bobs.id})
    not_a_number = await alice.get("/notifications", params={"integration": "abc"})

    for answer in (unknown_status, not_mine, not_a_number):
        assert answer.status_code == 200
        assert row_ids(answer.text) == [mine]
    assert "There is no delivery status “LOST”, so the log is shown with every status." in unknown_status.text
    assert f"You have no integration #{bobs.id} (it may have been deleted)" in not_mine.text
    assert f"Email #{bobs.id}" not in not_mine.text
    assert "You have no integration #abc" in not_a_number.text
    assert (await alice.get("/notifications", params={"status": "failed"})).status_code == 200


async def test_another_users_rows_never_appear(site: Site, alice: Person, bob: Person) -> None:
    hook = await integrations.create(site.pool, alice.id, "webhook", {"webhookUrl": "https://hooks.example/a"})
    shop = await monitors.create(site.pool, alice.id, MonitorFields(name="alices-shop", target="https://shop.example/"))
    await log_row(site, alice, hook.id, monitor_id=shop.id, status="FAILED", error="alice's secret error")

    html = (await bob.get("/notifications")).text
    filtered = (await bob.get("/notifications", params={"status": "FAILED", "integration": hook.id})).text

    assert row_ids(html) == [] and row_ids(filtered) == []
    for text in (html, filtered):
        assert "alices-shop" not in text and "alice&#39;s secret error" not in text
    assert "No notifications yet" in html


async def test_the_log_pages_by_fifty_with_older_and_newest_links(site: Site, alice: Person) -> None:
    hook = await integrations.create(site.pool, alice.id, "webhook", {"webhookUrl": "https://hooks.example/a"})
    ids = [await log_row(site, alice, hook.id, status="FAILED" if n % 2 else "SENT") for n in range(55)]

    first = (await alice.get("/notifications")).text
    assert row_ids(first) == ids[::-1][:50]
    older = re.search(r'<a class="btn" rel="next" href="([^"]+)">Older</a>', first)
    assert older and older[1] == f"/notifications?before={ids[5]}"
    second = (await alice.get(older[1])).text
    assert row_ids(second) == ids[::-1][50:]
    assert 'rel="next"' not in second and '<a class="btn" href="/notifications">Newest</a>' in second

    failed = (await alice.get("/notifications", params={"status": "FAILED"})).text
    assert len(row_ids(failed)) == 27 and 'rel="next"' not in failed
    assert (await alice.get("/notifications", params={"before": "zero"})).status_code == 404


async def test_an_empty_log_says_what_will_appear(alice: Person) -> None:
    html = (await alice.get("/notifications")).text
    assert "No notifications yet" in html
    assert "When one of your monitors goes down" in html
    assert '<table class="table notification-log">' not in html
