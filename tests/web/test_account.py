"""The account page without a browser: password change, API tokens with expiry, two-factor enrolment and sign-in."""

from __future__ import annotations

import html
import re

import pyotp

from tests.web.fixtures import PASSWORD, Person, Site

NEW_PASSWORD = "a much better passphrase"


def secret_of(page: str) -> str:
    found = re.search(r'<code id="totp-secret">([A-Z2-7]+)</code>', page)
    assert found, "no TOTP secret on the page"
    return found[1]


def codes_of(page: str) -> list[str]:
    return re.findall(r"<li><code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code></li>", page)


async def test_changing_the_password_needs_the_current_one_and_a_good_new_one(site: Site, alice: Person) -> None:
    elsewhere = site.client()
    assert (await site.sign_in(elsewhere, "alice")).status_code == 303
    form = {"current": PASSWORD, "new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
    for wrong, field, message in (
        ({"current": "not it"}, "current", "this is not your current password"),
        ({"new": "password", "repeat": "password"}, "new", "one of the first ones anybody tries"),
        ({"new": "short", "repeat": "short"}, "new", "at least 8 characters"),
        ({"new": "alicealice", "repeat": "alicealice"}, "new", "one of the first ones anybody tries"),
        ({"repeat": "something else"}, "repeat", "the two new passwords differ"),
    ):
        answer = await alice.post("/account/password", {**form, **wrong})
        assert answer.status_code == 422, wrong
        assert f'id="{field}-error"' in answer.text and message in html.unescape(answer.text)
    changed = await alice.post("/account/password", form)
    assert changed.status_code == 303
    assert "Password changed. 1 other session signed out." in (await alice.get("/account")).text
    assert (await elsewhere.get("/")).status_code == 303  # the other session ended
    assert (await site.sign_in(site.client(), "alice", PASSWORD)).status_code == 401
    assert (await site.sign_in(site.client(), "alice", NEW_PASSWORD)).status_code == 303


async def test_tokens_are_shown_once_listed_by_prefix_and_revoked(site: Site, alice: Person) -> None:
    created = await alice.post("/account/tokens", {"name": "deploy", "expires": "30d"})
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    secret = re.search(r'<code class="token-secret">(upt_[A-Za-z0-9_-]+)</code>', created.text)[1]  # type: ignore[index]
    api = site.client()
    assert (await api.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})).status_code == 200
    page = (await alice.get("/account")).text
    assert secret not in page and secret[:8] in page
    expires = await site.pool.fetchval("SELECT expires_at - created_at FROM api_tokens WHERE name = 'deploy'")
    assert abs(expires.total_seconds() - 30 * 86400) < 60
    token_id = await site.pool.fetchval("SELECT id FROM api_tokens WHERE name = 'deploy'")
    assert (await alice.post(f"/account/tokens/{token_id}/revoke")).status_code == 303
    assert (await api.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})).status_code == 401
    bob = await site.person("bob")
    assert (await bob.post(f"/account/tokens/{token_id}/revoke")).status_code == 404


async def test_an_expired_token_no_longer_authenticates(site: Site, alice: Person) -> None:
    created = await alice.post("/account/tokens", {"name": "short", "expires": "7d"})
    secret = re.search(r'<code class="token-secret">(upt_[A-Za-z0-9_-]+)</code>', created.text)[1]  # type: ignore[index]
    await site.pool.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'short'")
    answer = await site.client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


async def test_two_factor_enrolment_then_sign_in_with_a_code_and_with_a_recovery_code(
    site: Site, alice: Person
) -> None:
    started = await alice.post("/account/two-factor")
    assert "<svg" in started.text and 'class="qr"' in started.text
    totp = pyotp.TOTP(secret_of(started.text))
    assert (await alice.post("/account/two-factor/confirm", {"code": "000000"})).status_code == 422
    confirmed = await alice.post("/account/two-factor/confirm", {"code": totp.now()})
    codes = codes_of(confirmed.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "shown only now" in confirmed.text
    assert codes[0] not in (await alice.get("/account")).text

    async def second_step(code: str) -> tuple[int, str]:
        client = site.client()
        first = await site.sign_in(client, "alice")
        assert (first.status_code, first.headers["location"]) == (303, "/login/verify")
        assert "uptimed_session" not in client.cookies
        page = await client.get("/login/verify")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
        answer = await client.post("/login/verify", data={"csrf_token": token, "code": code})
        return answer.status_code, answer.text

    # The enrolment code was spent: the same code cannot sign in again (a code signs in once).
    await site.pool.execute("UPDATE users SET totp_last_step = NULL WHERE username = 'alice'")
    code = totp.now()
    status, _ = await second_step(code)
    assert status == 303
    status, text = await second_step(code)
    assert status == 401 and "That code is not right" in html.unescape(text)
    assert (await second_step(codes[3]))[0] == 303
    assert (await second_step(codes[3]))[0] == 401  # once only
    assert (await second_step(codes[4].upper()))[0] == 303


async def test_five_wrong_codes_send_back_to_the_password(site: Site, alice: Person) -> None:
    started = await alice.post("/account/two-factor")
    await alice.post("/account/two-factor/confirm", {"code": pyotp.TOTP(secret_of(started.text)).now()})
    client = site.client()
    await site.sign_in(client, "alice")
    for _ in range(5):
        page = await client.get("/login/verify")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
        answer = await client.post("/login/verify", data={"csrf_token": token, "code": "123456"})
        assert answer.status_code == 401
    assert "Sign in again" in answer.text
    assert (await client.get("/login/verify")).headers["location"] == "/login"
    assert "uptimed_session" not in client.cookies


async def test_turning_two_factor_off_needs_the_password(site: Site, alice: Person) -> None:
    started = await alice.post("/account/two-factor")
    await alice.post("/account/two-factor/confirm", {"code": pyotp.TOTP(secret_of(started.text)).now()})
    assert (await alice.post("/account/two-factor/disable", {"password": "nope"})).status_code == 422
    assert (await alice.post("/account/two-factor/disable", {"password": PASSWORD})).status_code == 303
    assert (await site.sign_in(site.client(), "alice")).headers["location"] == "/"
    assert await site.pool.fetchval("SELECT count(*) FROM recovery_codes") == 0
