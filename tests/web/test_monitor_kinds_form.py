"""The monitor form asks for every kind's options, each generated from the kind's own model.

No page code knows a kind: the fieldsets come from the installed kinds'
models, as the integration dialog's come from channels', so these tests read
the page the way a browser would and post what a browser sends.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.fixtures import Person, Site
from uptimed.monitor import MonitorFields
from uptimed.probe.kinds import default_kinds
from uptimed.store import monitors

COMMON = {
    "name": "thing",
    "interval": "1m",
    "timeout": "10s",
    "failure_threshold": "3",
    "success_threshold": "2",
    "quorum": "",
    "slow_threshold_ms": "",
    "repeat_interval": "",
}


async def _stored(site: Site, owner: Person, name: str = "thing") -> dict[str, Any]:
    row = await site.pool.fetchrow(
        "SELECT kind, target, options FROM monitors WHERE owner_id = $1 AND name = $2", owner.id, name
    )
    assert row is not None
    return dict(row)


async def test_the_form_offers_every_kind_with_its_own_options(site: Site, alice: Person) -> None:
    page = (await alice.get("/monitors/new")).text

    kinds = default_kinds()
    for name in ("http", "tcp", "ping", "dns", "tls", "postgres", "redis", "heartbeat"):
        assert f'<option value="{name}"' in page and f">{kinds.title(name)}</option>" in page
        assert f'data-channel="{name}"' in page
        for field in kinds.config_fields(name):
            assert f'name="{name}.{field.name}"' in page, (name, field.name)
    # What the file and the API always had, the form now has too.
    for field in ("http.json_path", "http.json_equals", "http.cert_expiry_days", "http.headers", "http.body"):
        assert f'name="{field}"' in page
    assert re.search(r'<input type="password"[^>]*name="postgres.password"', page)
    assert "Target: the name to resolve: www.example.com." in page
    assert 'name="tcp.' not in page and "This kind has no options." in page


async def test_a_dns_monitor_from_the_form_takes_only_its_kinds_fields(site: Site, alice: Person) -> None:
    answer = await alice.post(
        "/monitors",
        {
            **COMMON,
            "kind": "dns",
            "target": "shop.example.com",
            "dns.record": "MX",
            "dns.server": "127.0.0.1:5353",
            "dns.expected": "10 mail.example.com\n20 backup.example.com\n",
            "dns.match": "all",
            # A browser without JavaScript sends every kind's fields: the others are ignored.
            "http.method": "POST",
            "ping.count": "not a number",
        },
    )

    assert answer.status_code == 303, answer.text
    stored = await _stored(site, alice)
    assert (stored["kind"], stored["target"]) == ("dns", "shop.example.com")
    assert stored["options"]["dns"] == {
        "record": "MX",
        "server": "127.0.0.1:5353",
        "expected": ["10 mail.example.com", "20 backup.example.com"],
        "match": "all",
    }
    assert "ping" not in stored["options"]


async def test_http_json_path_and_certificate_expiry_from_the_form(site: Site, alice: Person) -> None:
    answer = await alice.post(
        "/monitors",
        {
            **COMMON,
            "kind": "http",
            "target": "https://api.example.com/health",
            "http.method": "GET",
            "http.accepted_statuses": "200-299",
            "http.follow_redirects": "on",
            "http.verify_tls": "on",
            "http.json_path": "checks.0.ok",
            "http.json_equals": "true",
            "http.cert_expiry_days": "21",
            "http.headers": "Authorization: Bearer abc\nX-Env: prod",
        },
    )

    assert answer.status_code == 303, answer.text
    http = (await _stored(site, alice))["options"]["http"]
    assert (http["json_path"], http["json_equals"], http["cert_expiry_days"]) == ("checks.0.ok", True, 21)
    assert http["headers"] == {"Authorization": "Bearer abc", "X-Env": "prod"}
    edit = (await alice.get(f"/monitors/{await site.pool.fetchval('SELECT id FROM monitors')}/edit")).text
    assert re.search(r'name="http.json_path"[^>]*value="checks.0.ok"', edit)
    assert re.search(r'name="http.cert_expiry_days"[^>]*value="21"', edit)


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"kind": "dns", "target": "example.com", "dns.server": "127.0.0.1:99999"},
            "dns.server",
            "the port must be a number",
        ),
        ({"kind": "dns", "target": "https://example.com/"}, "target", "a dns monitor needs a domain name"),
        ({"kind": "heartbeat", "heartbeat.cron": "61 * * * *"}, "heartbeat.cron", "not a cron expression"),
        ({"kind": "heartbeat", "heartbeat.timezone": "Mars/Olympus"}, "heartbeat.timezone", "unknown time zone"),
        ({"kind": "ping", "target": "gateway", "ping.count": "50"}, "ping.count", "must be at most 20"),
        ({"kind": "ping", "target": "gateway", "ping.count": "many"}, "ping.count", "must be a whole number"),
        (
            {"kind": "http", "target": "https://x.test/", "http.accepted_statuses": "200-399\n999"},
            "http.accepted_statuses",
            "expected a status code or range",
        ),
    ],
)
async def test_a_kinds_problem_is_shown_next_to_its_field(
    site: Site, alice: Person, values: dict[str, str], field: str, message: str
) -> None:
    answer = await alice.post("/monitors", {**COMMON, **values})

    assert answer.status_code == 422
    error = re.search(rf'<p class="field-error" id="{field.replace(".", "-")}-error">([^<]*)</p>', answer.text)
    assert error and message in error[1], answer.text[answer.text.find("form-problems") :][:800]
    assert await site.pool.fetchval("SELECT count(*) FROM monitors") == 0


async def test_a_secret_option_is_never_shown_and_kept_when_left_empty(site: Site, alice: Person) -> None:
    form = {
        **COMMON,
        "kind": "postgres",
        "target": "db.internal:5432",
        "postgres.user": "probe",
        "postgres.tls": "prefer",
    }
    created = await alice.post("/monitors", {**form, "postgres.password": "hunter2-hunter2"})
    assert created.status_code == 303, created.text
    monitor_id = int(created.headers["location"].rsplit("/", 1)[1])

    edit = (await alice.get(f"/monitors/{monitor_id}/edit")).text
    saved = await alice.post(
        f"/monitors/{monitor_id}/edit", {**form, "postgres.password": "", "postgres.query": "SELECT 1"}
    )
    kept = (await _stored(site, alice))["options"]["postgres"]
    changed = await alice.post(f"/monitors/{monitor_id}/edit", {**form, "postgres.password": "correct-horse"})
    replaced = (await _stored(site, alice))["options"]["postgres"]

    assert "hunter2" not in edit and re.search(r'name="postgres.user"[^>]*value="probe"', edit)
    assert saved.status_code == 303 and (kept["password"], kept["query"]) == ("hunter2-hunter2", "SELECT 1")
    assert changed.status_code == 303 and replaced["password"] == "correct-horse"


async def test_a_heartbeats_page_shows_its_ping_url_and_schedule(site: Site, alice: Person) -> None:
    fields = MonitorFields.model_validate(
        {"name": "backup", "kind": "heartbeat", "heartbeat": {"period": "1d", "grace": "2h"}}
    )
    monitor = await monitors.create(site.pool, alice.id, fields)

    page = (await alice.get(f"/monitors/{monitor.id}")).text

    assert monitor.ping_token and f"/ping/{monitor.ping_token}</code>" in page
    assert '<dd id="monitor-schedule">every 1d, 2h grace</dd>' in page
    assert "Heartbeat (cron job check-in)" in page
