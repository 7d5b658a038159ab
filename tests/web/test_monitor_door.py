"""The monitor pages keep credentials secret and check targets and quotas as the API does."""

from __future__ import annotations

import html

from tests.web.fixtures import Person, Site
from tests.web.test_monitor_pages import _form

SECRET_TARGET = "https://ops:pw-SECRET-1@shop.example/health?api_key=key-SECRET-2"


async def test_pages_show_a_monitors_credentials_masked_and_an_edit_keeps_them(site: Site, alice: Person) -> None:
    created = await alice.post("/monitors", _form({"target": SECRET_TARGET}))
    assert created.status_code == 303, created.text
    monitor_id = int(created.headers["location"].rsplit("/", 1)[1])
    for path in ("/", f"/monitors/{monitor_id}", f"/monitors/{monitor_id}/edit"):
        page = await alice.get(path)
        assert "SECRET" not in page.text, path
    edit = await alice.get(f"/monitors/{monitor_id}/edit")
    shown = "https://ops:********@shop.example/health?api_key=********"
    assert f'value="{html.escape(shown)}"' in edit.text
    saved = await alice.post(f"/monitors/{monitor_id}/edit", _form({"name": "renamed", "target": shown}))
    assert saved.status_code == 303
    assert await site.pool.fetchval("SELECT target FROM monitors WHERE id = $1", monitor_id) == SECRET_TARGET


async def test_the_form_refuses_an_internal_target_and_a_short_interval_beside_their_fields(
    site: Site, alice: Person
) -> None:
    refused = await alice.post(
        "/monitors", _form({"target": "http://169.254.169.254/latest/meta-data/", "interval": "5s", "timeout": "2s"})
    )
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert 'id="target-error"' in refused.text and "[security] allow_networks" in text
    assert 'id="interval-error"' in refused.text and "[quotas] min_interval" in text
    assert await site.pool.fetchval("SELECT count(*) FROM monitors") == 0
