"""A monitor's page, its form, pause / resume / delete, and who may do what to it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.web.fixtures import Person, Site
from uptimed.monitor import MonitorFields, MonitorSpec
from uptimed.store import monitors


async def _monitor(site: Site, owner: Person, **fields: Any) -> int:
    values = {"name": "shop", "target": "https://shop.example.com/health", "interval": 60, "timeout": 10} | fields
    return (await monitors.create(site.pool, owner.id, MonitorFields(**values))).id


async def _config_monitor(site: Site, owner: Person) -> int:
    spec = MonitorSpec(owner=owner.username, name="declared", target="https://declared.example.com/", interval=60)
    await monitors.sync_from_config(site.pool, [spec])
    return await site.pool.fetchval("SELECT id FROM monitors WHERE config_key = 'declared'")


async def _check(
    site: Site,
    monitor_id: int,
    region: str,
    at: datetime,
    *,
    status: str = "up",
    ms: float | None = 120.0,
    code: int | None = 200,
    error: str | None = None,
) -> None:
    await site.pool.execute(
        """
        INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms, status_code, error_class, error)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        """,
        monitor_id,
        region,
        at,
        status,
        ms,
        code,
        "connect" if error else None,
        error,
    )


async def _incident(site: Site, monitor_id: int, opened: datetime, resolved: datetime | None, cause: str) -> None:
    await site.pool.execute(
        "INSERT INTO incidents (monitor_id, opened_at, resolved_at, cause) VALUES ($1, $2, $3, $4)",
        monitor_id,
        opened,
        resolved,
        cause,
    )


async def _row(site: Site, monitor_id: int) -> dict[str, Any] | None:
    row = await site.pool.fetchrow("SELECT * FROM monitors WHERE id = $1", monitor_id)
    return dict(row) if row else None


def _section(html: str, id_: str) -> str:
    start = html.index(f'id="{id_}"')
    return html[start : html.index("</section>", start)]


def _chart(html: str) -> str:
    start = html.index("<svg", html.index('id="response-chart"'))
    return html[start : html.index("</svg>", start)]


def _form(values: dict[str, Any]) -> list[tuple[str, str]]:
    """A filled-in monitor form as the browser sends it (unchecked boxes are left out)."""
    fields = {
        "name": "shop",
        "kind": "http",
        "target": "https://shop.example.com/health",
        "interval": "1m",
        "timeout": "10s",
        "failure_threshold": "3",
        "success_threshold": "2",
        "quorum": "",
        "slow_threshold_ms": "",
        "repeat_interval": "",
        "http.method": "GET",
        "http.accepted_statuses": "200-399",
        "http.keyword": "",
        "http.keyword_absent": "",
        "http.follow_redirects": "on",
        "http.verify_tls": "on",
    } | values
    regions = fields.pop("regions", [])
    return [(k, v) for k, v in fields.items() if v is not None] + [("regions", r) for r in regions]


async def test_monitor_page_shows_chart_per_region_checks_and_incidents(site: Site, alice: Person) -> None:
    monitor_id = await _monitor(site, alice)
    now = datetime.now(UTC)
    for minutes in range(1, 11):
        await _check(site, monitor_id, "eu-west", now - timedelta(minutes=minutes), ms=100 + minutes)
        await _check(site, monitor_id, "us-east", now - timedelta(minutes=minutes, seconds=30), ms=200 + minutes)
    await _check(
        site,
        monitor_id,
        "us-east",
        now - timedelta(seconds=5),
        status="down",
        ms=None,
        code=None,
        error="connection refused",
    )
    await _incident(
        site,
        monitor_id,
        now - timedelta(hours=3),
        now - timedelta(hours=3) + timedelta(minutes=5),
        "HTTP 503 from eu-west",
    )
    await _incident(site, monitor_id, now - timedelta(minutes=12), None, "timeout in us-east")

    page = await alice.get(f"/monitors/{monitor_id}")

    assert page.status_code == 200
    assert "<h1>shop</h1>" in page.text
    assert "https://shop.example.com/health" in page.text
    chart = _chart(page.text)
    assert "eu-west" in chart and "us-east" in chart
    checks = _section(page.text, "checks")
    assert checks.count('class="check-row') == 21
    first = checks[checks.index('class="check-row') :]
    assert "connection refused" in first[: first.index("</tr>")]  # newest first
    assert "101 ms" in checks
    incidents = _section(page.text, "incidents")
    assert "HTTP 503 from eu-west" in incidents and "5 min" in incidents
    assert "timeout in us-east" in incidents and "Ongoing" in incidents and "12 min" in incidents
    # Incidents come before the check log: on a phone they are not 10,000 px down.
    assert page.text.index('id="incidents"') < page.text.index('id="checks"')
    # A monitor with less than an hour of checks is charted over that time only, not over 24 h.
    assert "Response time, last" in page.text and "(since it was created)" in page.text
    assert timedelta(minutes=9) <= _span(_chart(page.text)) <= timedelta(minutes=13)  # from its first check


def _current_range(html: str) -> str:
    """The range link marked as the current one (one only)."""
    found = re.findall(r'<a href="/monitors/\d+\?range=\w+" aria-current="page"[^>]*>(\w+)</a>', html)
    assert len(found) == 1, found
    return found[0]


def _span(chart: str) -> timedelta:
    found = re.search(r"Response time by region, (\w+ \d+ \d\d:\d\d) to (\w+ \d+ \d\d:\d\d) UTC", chart)
    assert found, chart[:300]
    year = datetime.now(UTC).year
    start, end = (datetime.strptime(f"{year} {text}", "%Y %b %d %H:%M") for text in found.groups())
    if start > end:  # across new year
        start = start.replace(year=year - 1)
    return end - start


async def test_range_links_change_the_charts_span(site: Site, alice: Person) -> None:
    monitor_id = await _monitor(site, alice)
    await _check(site, monitor_id, "eu-west", datetime.now(UTC) - timedelta(minutes=5))

    hour = await alice.get(f"/monitors/{monitor_id}?range=1h")
    week = await alice.get(f"/monitors/{monitor_id}?range=7d")

    assert abs(_span(_chart(hour.text)) - timedelta(hours=1)) <= timedelta(minutes=1)
    assert abs(_span(_chart(week.text)) - timedelta(days=7)) <= timedelta(minutes=1)
    assert _current_range(week.text) == "7d"
    assert (await alice.get(f"/monitors/{monitor_id}?range=1y")).status_code == 404


async def test_check_history_pages_back_with_older(site: Site, alice: Person) -> None:
    monitor_id = await _monitor(site, alice)
    now = datetime.now(UTC)
    for n in range(60):
        await _check(site, monitor_id, "eu-west", now - timedelta(minutes=n), ms=1000 + n)

    newest = await alice.get(f"/monitors/{monitor_id}")
    assert _section(newest.text, "checks").count('class="check-row') == 50
    older = re.search(r'href="([^"]+)" rel="next">Older<', newest.text)
    assert older

    page = await alice.get(older[1].replace("&amp;", "&"))
    rows = _section(page.text, "checks")
    assert rows.count('class="check-row') == 10
    assert "1.05 s" in rows and "1.04 s" not in rows  # the 51st newest onward
    assert ">Older<" not in page.text and ">Newest<" in page.text
    assert (await alice.get(f"/monitors/{monitor_id}?before=notacursor")).status_code == 404


async def test_new_monitor_form_creates_one(site: Site, alice: Person) -> None:
    form = await alice.get("/monitors/new")
    assert form.status_code == 200
    assert '<label for="interval">Interval</label>' in form.text

    created = await alice.post(
        "/monitors", _form({"name": "api", "target": "https://api.example.com/", "regions": ["eu-west"]})
    )

    assert created.status_code == 303
    row = await site.pool.fetchrow("SELECT id, name, regions, interval_s FROM monitors WHERE owner_id = $1", alice.id)
    assert (row["name"], list(row["regions"]), row["interval_s"]) == ("api", ["eu-west"], 60.0)
    assert created.headers["location"] == f"/monitors/{row['id']}"
    page = await alice.get(created.headers["location"])
    assert "Created “api”." in page.text


async def test_edit_form_round_trip(site: Site, alice: Person) -> None:
    monitor_id = await _monitor(site, alice, http={"headers": {"X-Probe": "uptimed"}})
    form = await alice.get(f"/monitors/{monitor_id}/edit")
    assert 'name="interval" type="text" value="1m"' in form.text
    assert 'name="timeout" type="text" value="10s"' in form.text

    saved = await alice.post(
        f"/monitors/{monitor_id}/edit",
        _form({"interval": "30s", "timeout": "5s", "http.accepted_statuses": "200-299, 418", "http.verify_tls": None}),
    )

    assert saved.status_code == 303 and saved.headers["location"] == f"/monitors/{monitor_id}"
    row = await _row(site, monitor_id)
    assert row and (row["interval_s"], row["timeout_s"]) == (30.0, 5.0)
    options = row["options"]["http"]
    assert options["accepted_statuses"] == [{"low": 200, "high": 299}, {"low": 418, "high": 418}]
    assert options["verify_tls"] is False
    assert options["headers"] == {"X-Probe": "uptimed"}  # not on the form: kept
    page = await alice.get(f"/monitors/{monitor_id}")
    assert "Saved “shop”." in page.text
    assert '<dd id="monitor-interval">30s</dd>' in page.text
    again = await alice.get(f"/monitors/{monitor_id}/edit")
    assert 'value="30s"' in again.text
    # The http options come from their model: a list one status a line, the headers as "Name: value" lines.
    assert re.search(r'name="http.accepted_statuses"[^>]*>200-299\n418</textarea>', again.text)
    assert re.search(r'name="http.headers"[^>]*>X-Probe: uptimed</textarea>', again.text)


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"interval": "0s"}, "interval", "must be at least 1 s"),
        ({"interval": "1m", "timeout": "2m"}, "timeout", "timeout (120 s) is longer than interval (60 s)"),
        ({"target": "shop.example.com"}, "target", "an http monitor needs an http:// or https:// URL"),
        ({"regions": ["eu-west", "mars"]}, "regions", "unknown region &#39;mars&#39;"),
    ],
)
async def test_invalid_input_is_shown_next_to_its_field_and_changes_nothing(
    site: Site, alice: Person, values: dict[str, Any], field: str, message: str
) -> None:
    monitor_id = await _monitor(site, alice)
    before = await _row(site, monitor_id)

    answer = await alice.post(f"/monitors/{monitor_id}/edit", _form({"name": "renamed", **values}))

    assert answer.status_code == 422
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', answer.text)
    assert error and message in error[1]
    if field != "regions":
        assert re.search(
            rf'<input id="{field}"[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*{field}-error', answer.text
        )
    assert 'value="renamed"' in answer.text  # what was typed is kept
    assert await _row(site, monitor_id) == before
    create = await alice.post("/monitors", _form(values))
    assert create.status_code == 422
    assert await site.pool.fetchval("SELECT count(*) FROM monitors") == 1


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"repeat_interval": "60d"}, "repeat_interval", "must be at most 30 days"),
        ({"regions": ["eu-west"], "quorum": "2"}, "quorum", "quorum 2 is more than its 1 regions"),
    ],
)
async def test_the_form_is_held_to_the_files_and_the_apis_rules(
    site: Site, alice: Person, values: dict[str, Any], field: str, message: str
) -> None:
    answer = await alice.post("/monitors", _form(values))

    assert answer.status_code == 422
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', answer.text)
    assert error and error[1].strip() == message


async def test_pause_resume_and_delete_with_notices(site: Site, alice: Person) -> None:
    monitor_id = await _monitor(site, alice)
    page = await alice.get(f"/monitors/{monitor_id}")
    assert '<button type="submit" class="btn">Pause</button>' in page.text
    assert 'data-confirm="Delete “shop”' in page.text

    paused = await alice.post(f"/monitors/{monitor_id}/toggle")
    assert paused.status_code == 303
    assert (await _row(site, monitor_id) or {})["enabled"] is False
    page = await alice.get(paused.headers["location"])
    assert "Paused “shop”." in page.text and ">Resume</button>" in page.text and "Paused</span>" in page.text

    await alice.post(f"/monitors/{monitor_id}/toggle")
    page = await alice.get(f"/monitors/{monitor_id}")
    assert "Resumed “shop”." in page.text and ">Pause</button>" in page.text
    assert (await _row(site, monitor_id) or {})["enabled"] is True

    deleted = await alice.post(f"/monitors/{monitor_id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/"
    assert await _row(site, monitor_id) is None
    dashboard = await alice.get("/")
    assert "Deleted “shop” with its checks and incidents." in dashboard.text
    assert (await alice.get(f"/monitors/{monitor_id}")).status_code == 404


async def test_config_declared_monitor_is_read_only(site: Site, alice: Person) -> None:
    monitor_id = await _config_monitor(site, alice)
    before = await _row(site, monitor_id)

    page = await alice.get(f"/monitors/{monitor_id}")
    assert page.status_code == 200
    assert "Declared in uptimed.toml: edit it there." in page.text
    assert 'id="monitor-actions"' not in page.text
    assert ">Edit</a>" not in page.text and ">Pause</button>" not in page.text
    assert f'action="/monitors/{monitor_id}/delete"' not in page.text

    assert (await alice.get(f"/monitors/{monitor_id}/edit")).status_code == 409
    for path, data in (
        (f"/monitors/{monitor_id}/toggle", []),
        (f"/monitors/{monitor_id}/delete", []),
        (f"/monitors/{monitor_id}/edit", _form({"interval": "5m"})),
    ):
        answer = await alice.post(path, data)
        assert answer.status_code == 409, path
        assert "declared in uptimed.toml" in answer.text
    assert await _row(site, monitor_id) == before


async def test_another_users_monitor_is_not_found_on_every_route(site: Site, alice: Person, bob: Person) -> None:
    monitor_id = await _monitor(site, alice)
    before = await _row(site, monitor_id)

    for missing in (monitor_id, 999_999):
        for path in (f"/monitors/{missing}", f"/monitors/{missing}/edit", f"/monitors/{missing}?range=7d"):
            answer = await bob.get(path)
            assert answer.status_code == 404, path
            assert "There is no such monitor, or it is not yours." in answer.text
            assert "shop.example.com" not in answer.text
        for path, data in (
            (f"/monitors/{missing}/toggle", []),
            (f"/monitors/{missing}/delete", []),
            (f"/monitors/{missing}/edit", _form({"name": "bob's now"})),
        ):
            answer = await bob.post(path, data)
            assert answer.status_code == 404, path
    assert await _row(site, monitor_id) == before


def _as_form(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        form.setdefault(name, []).append(value)
    return form


async def test_posts_without_the_csrf_token_are_refused(site: Site, alice: Person) -> None:
    monitor_id = await _monitor(site, alice)
    before = await _row(site, monitor_id)

    for path, data in (
        (f"/monitors/{monitor_id}/toggle", []),
        (f"/monitors/{monitor_id}/delete", []),
        (f"/monitors/{monitor_id}/edit", _form({"interval": "5m"})),
        ("/monitors", _form({"name": "forged"})),
    ):
        answer = await alice.client.post(path, data=_as_form([("csrf_token", "forged"), *data]))
        assert answer.status_code == 403, path
        assert "nothing was changed" in answer.text
        bare = await alice.client.post(path, data=_as_form(data))
        assert bare.status_code == 403, path
    assert await _row(site, monitor_id) == before
    assert await site.pool.fetchval("SELECT count(*) FROM monitors") == 1


async def test_signed_out_visitors_are_sent_to_sign_in(site: Site, alice: Person) -> None:
    monitor_id = await _monitor(site, alice)
    answer = await site.client().get(f"/monitors/{monitor_id}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/login?next=/monitors/{monitor_id}"
