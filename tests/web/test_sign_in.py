"""Signing in and out of the web pages: passwords, sessions, cookies, CSRF."""

from __future__ import annotations

import hashlib
import html
import re

import pytest

from tests.web.fixtures import PASSWORD, Person, Site, csrf_of
from uptimed.store import users
from uptimed.web import auth


async def test_pages_send_a_stranger_to_sign_in_and_back_after(site: Site) -> None:
    await site.person("alice")
    client = site.client()

    answer = await client.get("/notifications?status=FAILED")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/notifications%3Fstatus%3DFAILED"

    page = await client.get(answer.headers["location"])
    assert 'name="next" value="/notifications?status=FAILED"' in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    signed = await client.post(
        "/login",
        data={"csrf_token": token, "username": "alice", "password": PASSWORD, "next": "/notifications?status=FAILED"},
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/notifications?status=FAILED"


async def test_session_cookie_is_http_only_and_same_site(site: Site) -> None:
    await site.person("alice")
    client = site.client()
    answer = await site.sign_in(client, "alice")
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("uptimed_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # served over plain http here: a Secure cookie would never come back


async def test_session_cookie_is_secure_over_https(site: Site) -> None:
    await site.person("alice")
    client = site.client()
    client.base_url = "https://uptimed.test"
    answer = await site.sign_in(client, "alice")
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("uptimed_session="))
    assert "Secure" in cookie


async def test_only_a_hash_of_the_session_token_is_stored(site: Site, alice: Person) -> None:
    token = alice.client.cookies["uptimed_session"]
    stored = await site.pool.fetchval("SELECT token_hash FROM web_sessions WHERE user_id = $1", alice.id)
    assert stored == hashlib.sha256(token.encode()).digest()


async def test_wrong_password_and_unknown_user_get_the_same_answer(site: Site) -> None:
    await site.person("alice")
    wrong_password = await site.sign_in(site.client(), "alice", "not the password")
    unknown_user = await site.sign_in(site.client(), "mallory", "not the password")
    for answer in (wrong_password, unknown_user):
        assert answer.status_code == 401
        assert "Wrong username or password." in answer.text
        assert "uptimed_session" not in answer.headers.get("set-cookie", "")


async def test_a_user_without_a_password_cannot_sign_in(site: Site) -> None:
    await users.create(site.pool, "carol", "carol@example.com")
    answer = await site.sign_in(site.client(), "carol", "")
    assert answer.status_code == 401


async def test_sign_in_form_needs_its_token(site: Site) -> None:
    await site.person("alice")
    client = site.client()
    await client.get("/login")
    forged = await client.post("/login", data={"csrf_token": "forged", "username": "alice", "password": PASSWORD})
    assert forged.status_code == 403
    assert "uptimed_session" not in client.cookies


async def test_repeated_failures_lock_the_username_from_that_address_only(site: Site) -> None:
    await site.person("alice")
    for _ in range(auth.MAX_FAILURES):
        assert (await site.sign_in(site.client("198.51.100.7"), "alice", "guess")).status_code == 401
    locked = await site.sign_in(site.client("198.51.100.7"), "alice", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed attempts" in locked.text
    # The stranger did not lock alice out from where she signs in.
    assert (await site.sign_in(site.client("203.0.113.5"), "alice", PASSWORD)).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
async def test_sign_in_never_redirects_to_another_site(site: Site, target: str) -> None:
    await site.person("alice")
    client = site.client()
    page = await client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = await client.post(
        "/login", data={"csrf_token": token, "username": "alice", "password": PASSWORD, "next": target}
    )
    assert answer.headers["location"] == "/"


async def test_sign_out_ends_the_session(site: Site, alice: Person) -> None:
    answer = await alice.post("/logout")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert await site.pool.fetchval("SELECT count(*) FROM web_sessions WHERE user_id = $1", alice.id) == 0
    assert (await alice.get("/")).status_code == 303


async def test_sign_out_without_the_csrf_token_is_refused(site: Site, alice: Person) -> None:
    answer = await alice.client.post("/logout", data={"csrf_token": "nope"})
    assert answer.status_code == 403
    assert "did not carry the page's security token" in html.unescape(answer.text)
    assert (await alice.get("/")).status_code == 200


async def test_an_expired_session_signs_out(site: Site, alice: Person) -> None:
    await site.pool.execute("UPDATE web_sessions SET expires_at = now() - interval '1 second'")
    assert (await alice.get("/")).status_code == 303


async def test_each_session_has_its_own_csrf_token(site: Site, alice: Person) -> None:
    second = site.client()
    await site.sign_in(second, "alice")
    other = csrf_of((await second.get("/")).text)
    assert other != alice.csrf
    refused = await alice.client.post("/logout", data={"csrf_token": other})
    assert refused.status_code == 403


async def test_pages_carry_a_strict_content_security_policy(site: Site, alice: Person) -> None:
    page = await alice.get("/")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["cache-control"] == "no-store"


async def test_unknown_page_is_an_html_404_and_the_api_keeps_json(site: Site, alice: Person) -> None:
    page = await alice.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    api = await alice.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/json")


async def test_api_tokens_keep_working_beside_sessions(site: Site, alice: Person) -> None:
    from uptimed.store import api_tokens

    token, _ = await api_tokens.create(site.pool, alice.id, "script")
    answer = await site.client().get("/api/v1/monitors", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    # A session cookie is not an API credential.
    assert (await alice.get("/api/v1/monitors")).status_code == 401


async def test_api_docs_load_swagger_ui_from_uptimed_itself(site: Site) -> None:
    client = site.client()
    docs = await client.get("/docs")
    assert docs.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    script = await client.get(next(s for s in sources if s.endswith(".js")), headers={"Accept-Encoding": "gzip"})
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text  # httpx undoes the gzip
    assert script.headers["content-encoding"] == "gzip"
    plain = await client.get(next(s for s in sources if s.endswith(".css")), headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and ".swagger-ui" in plain.text
