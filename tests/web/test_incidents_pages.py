"""The incidents page, an incident's timeline, the acknowledge link from an alert, escalation policy pages.

The acknowledge link is what an alert carries: opened without sign-in it
shows the incident and a button; only the button (a POST) acknowledges, once,
for that incident only and only while it is open.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from tests.web.fixtures import Person, Site
from uptimed import links
from uptimed.monitor import MonitorFields
from uptimed.store import incidents, monitors, signing_keys


async def monitor(site: Site, owner: Person, name: str = "shop") -> int:
    fields = MonitorFields(name=name, target=f"https://{name}.example.com/", interval=60, timeout=10)
    return (await monitors.create(site.pool, owner.id, fields)).id


async def incident(
    site: Site, monitor_id: int, *, opened: datetime, resolved: datetime | None = None, cause: str = "HTTP 503"
) -> int:
    incident_id: int = await site.pool.fetchval(
        "INSERT INTO incidents (monitor_id, opened_at, resolved_at, cause) VALUES ($1, $2, $3, $4) RETURNING id",
        monitor_id,
        opened,
        resolved,
        cause,
    )
    return incident_id


async def hook(site: Site, owner: Person) -> int:
    integration_id: int = await site.pool.fetchval(
        "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', $2) RETURNING id",
        owner.id,
        {"webhookUrl": "https://hooks.example/x"},
    )
    return integration_id


async def ack_path(site: Site, incident_id: int, integration_id: int) -> str:
    key = await signing_keys.get_or_create(site.pool, links.ACK_KEY)
    return links.ack_path(key, incident_id, integration_id)


_TOKEN = re.compile(r'name="ack_token" value="([^"]+)"')


async def press(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """Open the link's page and press its Acknowledge button, as a browser would."""
    page = await client.get(path)
    token = _TOKEN.search(page.text)
    assert token, f"no Acknowledge button on {path}: {page.status_code}"
    return await client.post(path, data={"ack_token": token[1]})


async def acknowledged(site: Site, incident_id: int) -> tuple[str | None, str | None]:
    row = await site.pool.fetchrow("SELECT acknowledged_by, acknowledged_via FROM incidents WHERE id = $1", incident_id)
    return row["acknowledged_by"], row["acknowledged_via"]


async def test_an_acknowledge_link_shows_the_incident_acknowledges_only_when_pressed_and_once(
    site: Site, alice: Person
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    open_id = await incident(site, await monitor(site, alice), opened=now - timedelta(minutes=7))
    integration = await hook(site, alice)
    path = await ack_path(site, open_id, integration)
    stranger = site.client()  # whoever reads the alert: not signed in

    for _ in range(3):  # a mail system's link scanner opens it, more than once
        page = await stranger.get(path)
        assert page.status_code == 200
        assert "shop is down" in page.text and "HTTP 503" in page.text and ">Acknowledge</button>" in page.text
    assert await acknowledged(site, open_id) == (None, None)

    done = await press(stranger, path)
    assert done.status_code == 303 and done.headers["location"] == path  # a reload sends nothing again
    assert await acknowledged(site, open_id) == (f"the link sent to Webhook #{integration}", "link")

    again = await stranger.get(path)
    assert 'id="ack-done"' in again.text and "</button>" not in again.text
    assert f"Acknowledged by the link sent to Webhook #{integration} through this link" in again.text
    refused = await stranger.post(path, data={"ack_token": "x"})
    assert refused.status_code == 403  # no page token: nothing happens


async def test_a_link_works_once_even_after_the_acknowledgement_is_withdrawn(site: Site, alice: Person) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    open_id = await incident(site, await monitor(site, alice), opened=now - timedelta(minutes=3))
    path = await ack_path(site, open_id, await hook(site, alice))
    stranger = site.client()
    assert (await press(stranger, path)).status_code == 303
    withdrawn = await alice.post(f"/incidents/{open_id}/unack")
    assert withdrawn.status_code == 303
    page = await stranger.get(path)
    assert 'id="ack-used"' in page.text and "</button>" not in page.text
    assert await acknowledged(site, open_id) == (None, None)


async def test_a_link_is_refused_for_another_incident_and_after_the_incident_ended(site: Site, alice: Person) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    shop = await monitor(site, alice)
    ended = await incident(site, shop, opened=now - timedelta(hours=2), resolved=now - timedelta(hours=1))
    other = await incident(site, await monitor(site, alice, "api"), opened=now - timedelta(minutes=5))
    integration = await hook(site, alice)
    stranger = site.client()

    # The signature of one incident's link opens no other incident, nor the same one for another integration.
    signature = (await ack_path(site, ended, integration)).rsplit("/", 1)[1]
    for wrong in (f"/ack/{other}/{integration}/{signature}", f"/ack/{ended}/{integration + 1}/{signature}"):
        page = await stranger.get(wrong)
        assert page.status_code == 404 and "acknowledge link" in page.text
    assert (await stranger.get(f"/ack/{other}/{integration}/{signature[:-1]}A")).status_code == 404

    over = await stranger.get(await ack_path(site, ended, integration))
    assert over.status_code == 200 and 'id="ack-over"' in over.text and "</button>" not in over.text
    # Pressed on a page opened before it ended: refused, nothing recorded.
    before = await ack_path(site, other, integration)
    page = await stranger.get(before)
    token = _TOKEN.search(page.text)
    assert token
    await site.pool.execute("UPDATE incidents SET resolved_at = now() WHERE id = $1", other)
    late = await stranger.post(before, data={"ack_token": token[1]})
    assert late.status_code == 409 and "this incident is over" in late.text
    assert await acknowledged(site, other) == (None, None)


async def test_a_signed_in_person_acknowledging_from_a_link_is_named(site: Site, alice: Person) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    open_id = await incident(site, await monitor(site, alice), opened=now - timedelta(minutes=1))
    path = await ack_path(site, open_id, await hook(site, alice))
    assert (await press(alice.client, path)).status_code == 303
    assert await acknowledged(site, open_id) == ("alice", "link")
    assert "Acknowledged by alice through this link" in (await alice.get(path)).text


async def test_the_incidents_page_lists_open_first_with_their_acknowledgement_and_filters(
    site: Site, alice: Person, bob: Person
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    shop, api = await monitor(site, alice), await monitor(site, alice, "api")
    ancient = await incident(site, api, opened=now - timedelta(days=60), resolved=now - timedelta(days=59))
    old = await incident(site, shop, opened=now - timedelta(days=3), resolved=now - timedelta(days=3, minutes=-20))
    waiting = await incident(site, api, opened=now - timedelta(minutes=40), cause="timeout")
    taken = await incident(site, shop, opened=now - timedelta(minutes=10))
    await incidents.acknowledge(site.pool, taken, by="alice", via="page")
    await incident(site, await monitor(site, bob, "bobs"), opened=now - timedelta(minutes=2), cause="bob's")

    page = (await alice.get("/incidents")).text
    ids = [int(i) for i in re.findall(r'data-incident-id="(\d+)"', page)]
    assert ids == [taken, waiting, old]  # open first (newest first), then the ended ones of the last 30 days
    assert "bob's" not in page and "bobs" not in page
    assert 'data-ack="acknowledged"' in page and 'data-ack="unacknowledged"' in page
    assert f'href="/monitors/{api}"' in page and re.search(r"40 min( \d+ s)? so far", page) and ">20 min<" in page

    def listed(html: str) -> list[int]:
        return [int(i) for i in re.findall(r'data-incident-id="(\d+)"', html)]

    assert listed((await alice.get("/incidents?status=unacknowledged")).text) == [waiting]
    assert listed((await alice.get("/incidents?status=acknowledged")).text) == [taken]
    assert listed((await alice.get("/incidents?status=resolved&period=all")).text) == [old, ancient]
    assert listed((await alice.get("/incidents?status=resolved&period=24h")).text) == []


async def test_an_incidents_timeline_page_and_its_buttons(site: Site, alice: Person, bob: Person) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    open_id = await incident(site, await monitor(site, alice), opened=now - timedelta(minutes=12))
    page = await alice.get(f"/incidents/{open_id}")
    assert page.status_code == 200 and 'data-kind="opened"' in page.text and "Down: HTTP 503" in page.text
    assert ">Acknowledge</button>" in page.text
    assert (await bob.get(f"/incidents/{open_id}")).status_code == 404
    assert (await bob.post(f"/incidents/{open_id}/ack")).status_code == 404

    assert (await alice.post(f"/incidents/{open_id}/ack")).status_code == 303
    assert await acknowledged(site, open_id) == ("alice", "page")
    after = (await alice.get(f"/incidents/{open_id}")).text
    assert 'data-kind="acknowledged"' in after and "Acknowledged by alice on its page" in after
    assert "Withdraw acknowledgement</button>" in after
    again = await alice.post(f"/incidents/{open_id}/ack")
    assert again.status_code == 409


async def test_an_escalation_policy_from_the_form_with_its_problems_beside_their_fields(
    site: Site, alice: Person
) -> None:
    datetime.now(UTC).replace(microsecond=0)
    first, second = await hook(site, alice), await hook(site, alice)
    form = await alice.get("/escalation-policies/new")
    assert form.status_code == 200 and 'name="step-0-after"' in form.text
    more = await alice.post(
        "/escalation-policies",
        {"name": "Ops", "step_count": "1", "step-0-after": "0s", "step-0-integrations": [str(first)], "add_step": "1"},
    )
    assert more.status_code == 200 and 'name="step-1-after"' in more.text and 'value="Ops"' in more.text

    refused = await alice.post(
        "/escalation-policies",
        {
            "name": "Ops",
            "step_count": "3",
            "step-0-after": "10m",
            "step-0-integrations": [str(first)],
            "step-1-after": "5m",
            "step-1-integrations": [str(second)],
        },
    )
    assert refused.status_code == 422 and "step 2 must come later than step 1" in refused.text
    assert 'value="10m"' in refused.text  # what was typed stays

    saved = await alice.post(
        "/escalation-policies",
        {
            "name": "Ops",
            "step_count": "3",
            "step-0-after": "0s",
            "step-0-name": "on call",
            "step-0-integrations": [str(first)],
            "step-1-after": "5m",
            "step-1-integrations": [str(second)],
            "repeat_every": "15m",
        },
    )
    assert saved.status_code == 303
    listing = (await alice.get("/escalation-policies")).text
    assert "Ops" in listing and "At once (on call)" in listing and "After 5m" in listing and "every 15m" in listing
    policy_id = await site.pool.fetchval("SELECT id FROM escalation_policies WHERE owner_id = $1", alice.id)

    shop = await monitor(site, alice)
    edit = await alice.get(f"/monitors/{shop}/edit")
    assert f'<option value="{policy_id}">Ops</option>' in edit.text
    in_use = await site.pool.execute("UPDATE monitors SET escalation_policy_id = $1 WHERE id = $2", policy_id, shop)
    assert in_use == "UPDATE 1"
    refused_delete = await alice.post(f"/escalation-policies/{policy_id}/delete")
    assert refused_delete.status_code == 409 and "“shop”" in refused_delete.text
