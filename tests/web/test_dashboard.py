"""The dashboard: every monitor of the user with its status, response time, uptime and sparkline."""

from __future__ import annotations

import re
import time

from tests.web.fixtures import Person, Site
from uptimed.evaluate.state import Incident, MonitorState, MonitorStatus


async def add_monitor(
    site: Site,
    owner: Person,
    name: str,
    *,
    state: MonitorState | None = None,
    enabled: bool = True,
    checks: list[tuple[str, float]] = (),
) -> int:
    """A monitor with the evaluator's state and checks (status, response ms) over the last hour."""
    monitor_id = await site.pool.fetchval(
        """
        INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s, enabled)
        VALUES ($1, $2, 'https://' || $2 || '.example/', 60, 10, $3) RETURNING id
        """,
        owner.id,
        name,
        enabled,
    )
    if state is not None:
        await site.pool.execute(
            "INSERT INTO monitor_state (monitor_id, state) VALUES ($1, $2)", monitor_id, state.to_json()
        )
    for minutes_ago, (status, ms) in enumerate(reversed(checks)):
        await site.pool.execute(
            """
            INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms)
            VALUES ($1, 'eu-west', now() - make_interval(mins => $2), $3, $4)
            """,
            monitor_id,
            minutes_ago,
            status,
            ms,
        )
    return monitor_id


def row_of(html: str, monitor_id: int) -> str:
    match = re.search(rf'<tr class="monitor-row[^"]*" data-monitor-id="{monitor_id}">(.*?)</tr>', html, re.S)
    assert match, f"no row for monitor {monitor_id}"
    return match[0]


async def test_empty_dashboard_says_how_to_add_the_first_monitor(alice: Person) -> None:
    page = await alice.get("/")
    assert page.status_code == 200
    assert "No monitors yet" in page.text
    assert 'href="/monitors/new"' in page.text
    assert "[[monitors]]" in page.text and 'owner = "alice"' in page.text


async def test_dashboard_shows_status_response_time_and_uptime(site: Site, alice: Person) -> None:
    down_since = int(time.time() * 1000) - 5 * 60_000
    down = await add_monitor(
        site,
        alice,
        "api",
        state=MonitorState(status=MonitorStatus.DOWN, incident=Incident(opened_at_ms=down_since, cause="HTTP 500")),
        checks=[("up", 120.0), ("down", 30.0), ("down", 31.0), ("down", 29.0)],
    )
    up = await add_monitor(
        site, alice, "shop", state=MonitorState(status=MonitorStatus.UP), checks=[("up", 80.0), ("up", 95.0)]
    )
    slow = await add_monitor(site, alice, "search", state=MonitorState(status=MonitorStatus.UP, slow=True))
    paused = await add_monitor(site, alice, "old", enabled=False)

    page = (await alice.get("/")).text

    assert 'data-status="down"' in row_of(page, down) and "Down" in row_of(page, down)
    assert "down for 5 min" in row_of(page, down)
    assert "25.00%" in row_of(page, down)  # 1 of 4 checks up in 24 h
    assert 'data-status="up"' in row_of(page, up)
    assert "95 ms" in row_of(page, up) and "100%" in row_of(page, up)
    assert 'data-status="slow"' in row_of(page, slow) and "Slow" in row_of(page, slow)
    assert 'data-status="paused"' in row_of(page, paused)
    # What needs attention first: down, then slow, up, paused.
    order = [int(i) for i in re.findall(r'data-monitor-id="(\d+)"', page)]
    assert order == [down, slow, up, paused]
    # Every row has a sparkline that says in words what it shows.
    assert row_of(page, up).count("<svg") == 1
    assert 'role="img"' in row_of(page, up)


async def test_dashboard_refreshes_its_table_from_a_partial(site: Site, alice: Person) -> None:
    page = (await alice.get("/")).text
    assert 'data-refresh="/partials/monitors"' in page
    assert f'data-refresh-every="{site.settings.api.page_refresh:g}"' in page

    monitor = await add_monitor(site, alice, "api", state=MonitorState(status=MonitorStatus.UP))
    partial = await alice.client.get("/partials/monitors", headers={"X-Uptimed-Fetch": "1"})
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert 'data-status="up"' in row_of(partial.text, monitor)


async def test_partial_answers_401_to_a_fetch_after_sign_out(site: Site, alice: Person) -> None:
    await alice.post("/logout")
    partial = await alice.client.get("/partials/monitors", headers={"X-Uptimed-Fetch": "1"})
    assert partial.status_code == 401


async def test_dashboard_shows_only_the_users_own_monitors(site: Site, alice: Person, bob: Person) -> None:
    await add_monitor(site, alice, "alice-private-shop")
    page = (await bob.get("/")).text
    assert "alice-private-shop" not in page
    assert "No monitors yet" in page
