"""``/integrations``: the cards, the "Add integration" dialog built from each channel's schema, toggle, delete, test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field

from tests.support import WebhookReceiver
from tests.web.fixtures import Person, Site
from uptimed.channels.base import Notification, Secret
from uptimed.channels.registry import BrokenChannel, LoadedChannel, default_registry
from uptimed.store import integrations

# The receiver's path stands in for the token a real webhook URL carries.
SECRET_PATH = "/hooks/private-token-4b1d9c"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        return " ".join(" ".join((c if isinstance(c, str) else c.text()).split()) for c in self.children).strip()

    def all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants with this tag and these attribute values (``class_`` for ``class``)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        found: list[Element] = []
        for child in self.children:
            if isinstance(child, Element):
                if (tag is None or child.tag == tag) and all(child.attrs.get(k) == v for k, v in wanted.items()):
                    found.append(child)
                found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag}> with {attrs}"
        return found[0]

    def label_of(self, control: Element) -> str:
        (label,) = self.all("label", for_=control.attrs["id"])
        return label.text()


class _Tree(HTMLParser):
    VOID: ClassVar[set[str]] = {"input", "meta", "link", "img", "br", "hr", "path", "rect"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v if v is not None else "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def page(html: str) -> Element:
    tree = _Tree()
    tree.feed(html)
    return tree.root


def card(html: str, integration_id: int) -> Element:
    return page(html).one("article", id=f"integration-{integration_id}")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver().start()
    yield server
    await server.stop()


async def add_webhook(site: Site, person: Person, url: str) -> int:
    """Add a webhook integration through the dialog's form; its id."""
    answer = await person.post("/integrations", {"type": "webhook", "webhook.webhookUrl": url})
    assert answer.status_code == 303, answer.text
    return await site.pool.fetchval("SELECT max(id) FROM integrations WHERE owner_id = $1", person.id)


async def count(site: Site) -> int:
    return await site.pool.fetchval("SELECT count(*) FROM integrations")


async def test_adding_a_webhook_through_the_form_lists_it_with_the_url_masked(
    site: Site, alice: Person, receiver: WebhookReceiver
) -> None:
    url = receiver.url(SECRET_PATH)
    answer = await alice.post(
        "/integrations",
        {
            "type": "webhook",
            "webhook.webhookUrl": url,
            "webhook.timeout": "5",
            "webhook.headers": "Authorization: Bearer header-token-77\n\nX-Team: ops",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/integrations"

    listing = await alice.get("/integrations")
    (added,) = await integrations.page_for_owner(site.pool, alice.id, before_id=None, limit=10)
    shown = card(listing.text, added.id)
    assert "Integration “Webhook to 127.0.0.1” added." in page(listing.text).one("p", class_="notice").text()
    assert shown.one("h2").text() == "Webhook to 127.0.0.1"  # its type and destination, as nobody named it
    assert shown.one("p", class_="integration-type").text() == "Webhook #" + str(added.id)
    assert shown.one("svg").attrs["data-icon"] == "webhook"
    assert shown.one("span", class_="badge badge-enabled").text() == "● Active"
    summary = shown.one("p", class_="integration-summary").text()
    assert summary.startswith("Webhook URL: …1d9c · ")  # masked: the last four characters
    assert "Headers: Authorization, X-Team" in summary and "Timeout: 5" in summary
    assert added.config["webhookUrl"] == url
    assert added.config["headers"] == {"Authorization": "Bearer header-token-77", "X-Team": "ops"}
    for path in ("/integrations", "/integrations?add=webhook", "/notifications", "/"):
        html = (await alice.get(path)).text
        assert url not in html and "private-token" not in html and "header-token-77" not in html, path


async def test_the_dialog_has_a_labelled_fieldset_per_channel_type(alice: Person) -> None:
    html = page((await alice.get("/integrations")).text)

    opener = html.one("button", aria_haspopup="dialog")
    assert opener.text() == "Add integration"
    dialog = html.one("dialog", id="add-integration")
    assert "open" not in dialog.attrs
    select = dialog.one("select", name="type")
    assert html.label_of(select) == "Type"
    assert [o.attrs["value"] for o in select.all("option")] == default_registry().names()
    assert dialog.one("option", value="webhook").attrs.get("selected") == ""
    assert {f.attrs["data-channel"] for f in dialog.all("fieldset")} == set(default_registry().names())

    url = dialog.one("input", name="webhook.webhookUrl")
    assert url.attrs["type"] == "password" and url.attrs["autocomplete"] == "off"
    assert url.attrs["aria-required"] == "true"
    assert html.label_of(url) == "Webhook URL *"
    help_id = url.attrs["aria-describedby"]
    assert html.one(id=help_id).text() == "Where to POST the event."
    timeout = dialog.one("input", name="webhook.timeout")
    assert (timeout.attrs["type"], timeout.attrs["max"], timeout.attrs["value"]) == ("number", "120", "10")
    headers = dialog.one("textarea", name="webhook.headers")
    assert (
        html.label_of(headers) == "Headers" and "Name: value" in html.one(id=headers.attrs["aria-describedby"]).text()
    )
    assert dialog.one("input", name="telegram.disableNotification").attrs["type"] == "checkbox"
    assert dialog.one("input", name="telegram.chatId").attrs["type"] == "text"
    assert dialog.one("button", type="submit", class_="btn btn-primary").text() == "Save integration"

    without_script = page((await alice.get("/integrations?add=telegram")).text).one("dialog", id="add-integration")
    assert "open" in without_script.attrs
    assert without_script.one("option", value="telegram").attrs.get("selected") == ""


async def test_an_invalid_url_answers_422_naming_the_field_and_keeping_what_was_typed(
    site: Site, alice: Person
) -> None:
    answer = await alice.post(
        "/integrations",
        {"type": "webhook", "webhook.webhookUrl": "ftp://files.example/secret-place", "webhook.timeout": "7"},
    )

    assert answer.status_code == 422
    html = page(answer.text)
    dialog = html.one("dialog", id="add-integration")
    assert "open" in dialog.attrs
    assert dialog.one("p", role="alert").text().startswith("Check Webhook URL.")
    url = dialog.one("input", name="webhook.webhookUrl")
    assert url.attrs["aria-invalid"] == "true"
    # What was just typed comes back, secrets too: nothing is stored yet, and retyping a long URL is a chore.
    assert url.attrs["value"] == "ftp://files.example/secret-place"
    error = html.one(id="webhook-webhookUrl-error")
    assert error.text() == "must be an http:// or https:// URL"
    assert "webhook-webhookUrl-error" in url.attrs["aria-describedby"].split()
    assert dialog.one("input", name="webhook.timeout").attrs["value"] == "7"
    assert await count(site) == 0


async def test_missing_required_fields_answer_422_naming_each(site: Site, alice: Person) -> None:
    answer = await alice.post("/integrations", {"type": "telegram", "telegram.botToken": "", "telegram.chatId": " "})

    assert answer.status_code == 422
    html = page(answer.text)
    assert html.one(id="telegram-botToken-error").text() == "is required"
    assert html.one(id="telegram-chatId-error").text() == "is required"
    assert html.one("p", role="alert").text().startswith("Check Bot token, Chat ID.")
    assert html.one("option", value="telegram").attrs.get("selected") == ""
    assert await count(site) == 0


async def test_a_bad_header_line_or_number_is_named(site: Site, alice: Person) -> None:
    answer = await alice.post(
        "/integrations",
        {
            "type": "webhook",
            "webhook.webhookUrl": "https://hooks.example/x",
            "webhook.timeout": "soon",
            "webhook.headers": "X-Team: ops\nno colon on this line",
        },
    )

    assert answer.status_code == 422
    html = page(answer.text)
    assert html.one(id="webhook-headers-error").text() == "line 2: expected “Name: value”"
    assert html.one(id="webhook-timeout-error").text() == "must be a number"
    assert "no colon on this line" in html.one("textarea", name="webhook.headers").text()  # kept, to correct
    assert await count(site) == 0


async def test_a_header_the_channel_refuses_is_shown_with_its_own_message(site: Site, alice: Person) -> None:
    answer = await alice.post(
        "/integrations",
        {"type": "webhook", "webhook.webhookUrl": "https://hooks.example/x", "webhook.headers": "Host: evil"},
    )

    assert answer.status_code == 422
    assert page(answer.text).one(id="webhook-headers-error").text() == "header 'Host' is set by uptimed"
    assert await count(site) == 0


async def test_an_unknown_type_answers_422(site: Site, alice: Person) -> None:
    answer = await alice.post("/integrations", {"type": "pager", "pager.key": "x"})

    assert answer.status_code == 422
    assert page(answer.text).one(id="type-error").text() == "Choose one of the listed types."
    assert await count(site) == 0


async def test_forms_without_or_with_a_wrong_csrf_token_are_refused(site: Site, alice: Person) -> None:
    fields = {"type": "email", "email.email": "ops@example.com"}
    missing = await alice.client.post("/integrations", data=fields)
    wrong = await alice.client.post("/integrations", data={**fields, "csrf_token": "not-the-token"})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert "Form refused" in missing.text
    assert await count(site) == 0

    made = await integrations.create(site.pool, alice.id, "email", {"email": "ops@example.com"})
    for action in ("toggle", "delete", "test"):
        refused = await alice.client.post(f"/integrations/{made.id}/{action}", data={"csrf_token": "forged"})
        assert refused.status_code == 403, action
    assert (await integrations.get(site.pool, made.id)).enabled is True


async def test_toggle_and_delete_show_notices(site: Site, alice: Person) -> None:
    made = await integrations.create(site.pool, alice.id, "email", {"email": "ops@example.com"})

    disabled = await alice.post(f"/integrations/{made.id}/toggle")
    assert (disabled.status_code, disabled.headers["location"]) == (303, "/integrations")
    html = (await alice.get("/integrations")).text
    assert "“Email to ops@example.com” disabled" in page(html).one("p", class_="notice").text()
    shown = card(html, made.id)
    assert shown.one("span", class_="badge badge-disabled").text() == "○ Disabled"
    assert [b.text() for b in shown.all("button")] == ["Send test", "Enable", "Delete"]

    await alice.post(f"/integrations/{made.id}/toggle")
    html = (await alice.get("/integrations")).text
    assert "“Email to ops@example.com” enabled." in html
    assert card(html, made.id).one("span", class_="badge badge-enabled").text() == "● Active"

    delete_form = card(html, made.id).one("form", action=f"/integrations/{made.id}/delete")
    assert delete_form.attrs["data-confirm"].startswith("Delete “Email to ops@example.com”?")
    deleted = await alice.post(f"/integrations/{made.id}/delete")
    assert deleted.status_code == 303
    html = (await alice.get("/integrations")).text
    assert "“Email to ops@example.com” deleted." in html
    assert f'id="integration-{made.id}"' not in html
    assert await integrations.get(site.pool, made.id) is None


async def test_another_users_integration_is_not_found(site: Site, alice: Person, bob: Person) -> None:
    made = await integrations.create(site.pool, alice.id, "email", {"email": "alice-only@example.com"})

    for action in ("toggle", "delete", "test", "edit"):
        answer = await bob.post(f"/integrations/{made.id}/{action}")
        assert answer.status_code == 404, action
        assert "There is no such integration, or it is not yours." in answer.text
    assert (await bob.get(f"/integrations/{made.id}/edit")).status_code == 404
    for path in ("/integrations/999999/toggle", "/integrations/abc/delete"):
        assert (await alice.post(path)).status_code == 404
    listing = (await bob.get("/integrations")).text
    assert "alice-only" not in listing and f"integration-{made.id}" not in listing
    assert "No integrations yet" in listing
    assert (await integrations.get(site.pool, made.id)).enabled is True


async def test_an_integration_declared_in_the_config_file_is_read_only(site: Site, alice: Person) -> None:
    declared = await site.pool.fetchval(
        "INSERT INTO integrations (owner_id, config_key, type, config) VALUES ($1, 'ops', 'webhook', $2) RETURNING id",
        alice.id,
        {"webhookUrl": "https://hooks.example/declared-secret-path", "headers": {}},
    )

    html = (await alice.get("/integrations")).text
    shown = card(html, declared)
    assert "Declared in uptimed.toml" in shown.one("p", class_="config-note hint").text()
    assert [b.text() for b in shown.all("button")] == ["Send test"]
    assert "declared-secret-path" not in html
    assert (await alice.get(f"/integrations/{declared}/edit")).status_code == 409
    for action in ("toggle", "delete", "edit"):
        answer = await alice.post(f"/integrations/{declared}/{action}")
        assert answer.status_code == 409
        assert "declared in uptimed.toml, so it can only be changed there" in answer.text
    assert await count(site) == 1


async def test_send_test_without_script_redirects_with_the_real_result(
    site: Site, alice: Person, receiver: WebhookReceiver
) -> None:
    receiver.script("/down", 500)
    working = await add_webhook(site, alice, receiver.url("/up-and-running"))
    broken = await add_webhook(site, alice, receiver.url("/down"))

    sent = await alice.post(f"/integrations/{working}/test")
    assert (sent.status_code, sent.headers["location"]) == (303, "/integrations")
    assert "Test sent to “Webhook to 127.0.0.1”." in (await alice.get("/integrations")).text
    (request,) = await receiver.wait_for("/up-and-running")
    assert request.json()["kind"] == "test"

    await alice.post(f"/integrations/{broken}/test")
    html = (await alice.get("/integrations")).text
    assert page(html).one("p", class_="notice").text() == "Test to “Webhook to 127.0.0.1” failed: HTTP 500: nope"


async def test_send_test_with_script_answers_the_outcome_as_json(
    site: Site, alice: Person, receiver: WebhookReceiver
) -> None:
    receiver.script("/down", 500)
    working = await add_webhook(site, alice, receiver.url("/up-and-running"))
    broken = await add_webhook(site, alice, receiver.url("/down"))
    fetch = {"X-Uptimed-Fetch": "1"}

    sent = await alice.post(f"/integrations/{working}/test", headers=fetch)
    failed = await alice.post(f"/integrations/{broken}/test", headers=fetch)

    assert sent.status_code == 200 and sent.headers["content-type"] == "application/json"
    assert sent.json() == {"status": "sent", "error": None}
    assert failed.json() == {"status": "failed", "error": "HTTP 500: nope"}
    assert len(await receiver.wait_for("/up-and-running")) == 1
    assert len(receiver.to("/down")) == 1
    # The card has the region the script writes the outcome into.
    region = card((await alice.get("/integrations")).text, working).one("p", class_="test-result")
    assert region.attrs["aria-live"] == "polite"


async def test_a_test_through_a_channel_that_is_not_installed_fails_plainly(site: Site, alice: Person) -> None:
    gone = await site.pool.fetchval(
        "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'pager', $2) RETURNING id",
        alice.id,
        {"routingKey": "pager-routing-key-123456"},
    )

    html = (await alice.get("/integrations")).text
    shown = card(html, gone)
    assert shown.one("svg").attrs["data-icon"] == "generic"
    assert shown.one("h2").text() == "Pager"
    assert shown.one("p", class_="integration-type").text() == f"Pager #{gone}"
    assert "is not installed" in shown.text()
    assert "pager-routing-key-123456" not in html  # an unreadable config is masked whole
    answer = await alice.post(f"/integrations/{gone}/test", headers={"X-Uptimed-Fetch": "1"})
    assert answer.json()["status"] == "failed"
    assert "unknown channel type 'pager'" in answer.json()["error"]


class BeaconConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    apiKey: Secret = Field(description="the key of your beacon account")
    level: int = Field(2, ge=1, le=3, description="how loud")


class BeaconChannel:
    name: ClassVar[str] = "beacon"
    config_model: ClassVar[type[BaseModel]] = BeaconConfig
    sent: ClassVar[list[str]] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification.config.apiKey.get_secret_value())


async def test_a_plugin_channel_gets_its_form_and_card_without_page_code(
    site: Site, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = site.app.state.context.registry
    monkeypatch.setitem(registry.channels, "beacon", LoadedChannel("beacon", BeaconChannel(), "uptimed-beacon", "1.0"))
    monkeypatch.setattr(
        registry, "broken", [BrokenChannel("klaxon", "import failed: ModuleNotFoundError", "uptimed-klaxon")]
    )

    html = page((await alice.get("/integrations")).text)
    fieldset = html.one("fieldset", id="channel-beacon")
    assert fieldset.one("legend").text() == "Beacon settings"
    key = fieldset.one("input", name="beacon.apiKey")
    assert key.attrs["type"] == "password" and html.label_of(key) == "API key *"
    level = fieldset.one("input", name="beacon.level")
    assert (level.attrs["min"], level.attrs["max"], level.attrs["step"]) == ("1", "3", "1")
    assert "klaxon" in html.one("div", id="broken-channels").text()

    added = await alice.post(
        "/integrations", {"type": "beacon", "beacon.apiKey": "beacon-key-0123456789", "beacon.level": "3"}
    )
    assert added.status_code == 303
    (made,) = await integrations.page_for_owner(site.pool, alice.id, before_id=None, limit=10)
    assert made.config == {"apiKey": "beacon-key-0123456789", "level": 3}
    listing = (await alice.get("/integrations")).text
    assert card(listing, made.id).one("p", class_="integration-summary").text() == "API key: …6789 · Level: 3"
    assert "beacon-key-0123456789" not in listing
    outcome = await alice.post(f"/integrations/{made.id}/test", headers={"X-Uptimed-Fetch": "1"})
    assert json.loads(outcome.text) == {"status": "sent", "error": None}
    assert BeaconChannel.sent[-1] == "beacon-key-0123456789"


async def test_an_empty_page_says_what_integrations_are(alice: Person) -> None:
    html = page((await alice.get("/integrations")).text)
    empty = html.one("section", id="empty-state")
    assert empty.one("h2").text() == "No integrations yet"
    assert "tells you that a monitor went down" in empty.text()
    assert 'owner = "alice"' in empty.text()


async def test_editing_keeps_the_secrets_left_empty_and_replaces_those_typed(site: Site, alice: Person) -> None:
    made = await add_webhook(site, alice, "https://hooks.example/kept-secret-path")

    form = (await alice.get(f"/integrations/{made}/edit")).text
    assert "kept-secret-path" not in form  # the page never holds a stored secret
    assert 'value="10"' in form  # the stored timeout, to change

    saved = await alice.post(f"/integrations/{made}/edit", {"webhook.webhookUrl": "", "webhook.timeout": "3"})
    assert saved.status_code == 303
    stored = (await integrations.get(site.pool, made)).config
    assert stored["webhookUrl"] == "https://hooks.example/kept-secret-path" and stored["timeout"] == 3
    assert "Integration “Webhook to hooks.example” saved." in (await alice.get("/integrations")).text

    await alice.post(f"/integrations/{made}/edit", {"webhook.webhookUrl": "https://hooks.example/new-path"})
    assert (await integrations.get(site.pool, made)).config["webhookUrl"] == "https://hooks.example/new-path"


async def test_an_invalid_edit_answers_422_at_the_field_and_changes_nothing(site: Site, alice: Person) -> None:
    made = await add_webhook(site, alice, "https://hooks.example/path")
    before = (await integrations.get(site.pool, made)).config

    answer = await alice.post(f"/integrations/{made}/edit", {"webhook.timeout": "500"})

    assert answer.status_code == 422
    field = page(answer.text).one("input", id="field-webhook-timeout")
    assert field.attrs.get("aria-invalid") == "true"
    assert "must be at most 120" in page(answer.text).one("p", id="webhook-timeout-error").text()
    assert (await integrations.get(site.pool, made)).config == before


async def test_an_optional_secret_can_be_removed_on_edit(site: Site, alice: Person) -> None:
    answer = await alice.post(
        "/integrations",
        {"type": "webhook", "webhook.webhookUrl": "https://hooks.example/p", "webhook.secret": "hmac-key-0123456789"},
    )
    assert answer.status_code == 303
    made = await site.pool.fetchval("SELECT max(id) FROM integrations")
    form = (await alice.get(f"/integrations/{made}/edit")).text
    assert "Remove the stored Secret" in form and "hmac-key" not in form

    await alice.post(f"/integrations/{made}/edit", {})  # left empty: kept
    assert (await integrations.get(site.pool, made)).config["secret"] == "hmac-key-0123456789"

    await alice.post(f"/integrations/{made}/edit", {"remove.webhook.secret": "on"})
    stored = (await integrations.get(site.pool, made)).config
    assert stored["secret"] is None and stored["webhookUrl"] == "https://hooks.example/p"
    assert "Remove the stored Secret" not in (await alice.get(f"/integrations/{made}/edit")).text


class LanternChannel(BeaconChannel):
    name: ClassVar[str] = "lantern"
    title: ClassVar[str] = "LANTERN.io"
    icon: ClassVar[tuple[str, ...]] = ("M12 2v4", 'M6 10h12"/><script>alert(1)</script>')


async def test_a_channel_names_and_draws_itself(site: Site, alice: Person, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = site.app.state.context.registry
    monkeypatch.setitem(
        registry.channels, "lantern", LoadedChannel("lantern", LanternChannel(), "uptimed-lantern", "1.0")
    )
    made = await site.pool.fetchval(
        "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'lantern', $2) RETURNING id",
        alice.id,
        {"apiKey": "lantern-key-0123456789"},
    )

    html = (await alice.get("/integrations")).text
    shown = card(html, made)
    assert shown.one("h2").text() == "LANTERN.io"
    assert shown.one("p", class_="integration-type").text() == f"LANTERN.io #{made}"
    icon = shown.one("svg")
    assert icon.attrs["data-icon"] == "lantern"
    assert [p.attrs["d"] for p in icon.all("path")] == list(LanternChannel.icon)  # data, never markup
    assert "<script>alert(1)</script>" not in html
    assert page(html).one("fieldset", id="channel-lantern").one("legend").text() == "LANTERN.io settings"
