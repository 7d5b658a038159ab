"""Bearer tokens: 401 without a valid one, tokens stored as hashes, made and revoked by CLI and API."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest

from tests.api.conftest import Api, Person, make_person
from tests.support import Stack
from uptimed.cli import main

PROTECTED = [
    ("GET", "/api/v1/integrations"),
    ("POST", "/api/v1/integrations"),
    ("PUT", "/api/v1/integrations/1"),
    ("PATCH", "/api/v1/integrations/1/toggle"),
    ("DELETE", "/api/v1/integrations/1"),
    ("POST", "/api/v1/integrations/1/test"),
    ("GET", "/api/v1/channels"),
    ("GET", "/api/v1/monitors"),
    ("GET", "/api/v1/monitors/1/checks"),
    ("GET", "/api/v1/notifications"),
    ("GET", "/api/v1/incidents"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/tokens"),
]


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, 'Bearer realm="uptimed"'),
        ("Bearer upt_not-a-real-token", 'Bearer realm="uptimed", error="invalid_token"'),
        ("Bearer someone-elses-format", 'Bearer realm="uptimed", error="invalid_token"'),
        ("Basic YWxpY2U6c2VjcmV0", 'Bearer realm="uptimed"'),
    ],
)
async def test_every_api_route_answers_401_with_a_challenge(
    api: Api, alice: Person, authorization: str | None, challenge: str
) -> None:
    client = api.client(**({"Authorization": authorization} if authorization else {}))
    for method, path in PROTECTED:
        response = await client.request(method, path, json={} if method in ("POST", "PUT") else None)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == challenge
        assert "detail" in response.json()


async def test_the_token_identifies_the_caller_and_only_its_hash_is_stored(api: Api, alice: Person) -> None:
    me = await alice.client.get("/api/v1/me")

    assert me.json()["username"] == "alice"
    stored = await api.pool.fetchrow("SELECT prefix, token_hash FROM api_tokens WHERE user_id = $1", alice.id)
    assert bytes(stored["token_hash"]) == hashlib.sha256(alice.token.encode()).digest()
    assert stored["prefix"] == alice.token[:8]
    assert re.fullmatch(r"upt_[A-Za-z0-9_-]{43}", alice.token)
    assert await api.pool.fetchval("SELECT last_used_at IS NOT NULL FROM api_tokens WHERE user_id = $1", alice.id)


async def test_tokens_made_through_the_api_work_once_shown_and_stop_when_revoked(api: Api, alice: Person) -> None:
    created = await alice.client.post("/api/v1/tokens", json={"name": "ci"})
    new = api.client(created.json()["token"])

    listed = (await alice.client.get("/api/v1/tokens")).json()
    works = await new.get("/api/v1/me")
    revoked = await alice.client.delete(f"/api/v1/tokens/{created.json()['id']}")
    refused = await new.get("/api/v1/me")

    assert created.status_code == 201
    assert created.json()["prefix"] == created.json()["token"][:8]
    assert all("token" not in t for t in listed)
    assert [t["name"] for t in listed] == ["tests", "ci"]
    assert works.json()["id"] == alice.id
    assert revoked.json() == {"success": True}
    assert refused.status_code == 401
    assert (await alice.client.get("/api/v1/me")).status_code == 200  # the other token is untouched
    too_long = await alice.client.post("/api/v1/tokens", json={"name": "x" * 101})
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["field"] == "name"


async def test_only_admins_list_users(api: Api, alice: Person, bob: Person) -> None:
    root = await make_person(api, "root", admin=True)

    refused = await alice.client.get("/api/v1/users")
    listed = await root.client.get("/api/v1/users", params={"limit": 2})
    rest = await root.client.get("/api/v1/users", params={"cursor": listed.headers["X-Next-Cursor"]})

    assert refused.status_code == 403
    assert [u["username"] for u in listed.json() + rest.json()] == ["alice", "bob", "root"]
    assert rest.json()[0]["is_admin"] is True


async def test_cli_creates_users_and_tokens_and_revokes_them(
    api: Api, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_env: None
) -> None:
    config = tmp_path / "uptimed.toml"
    config.write_text(stack.toml())

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, [*argv, "-c", str(config)])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await run("user", "create", "carol", "--email", "carol@example.com", "--admin")
    assert code == 0
    first = re.search(r"upt_[A-Za-z0-9_-]{43}", out)[0]
    code, out, _ = await run("token", "create", "carol", "--name", "deploy")
    second = re.search(r"upt_[A-Za-z0-9_-]{43}", out)[0]
    code, listing, _ = await run("token", "list", "--user", "carol")
    second_id = int(re.search(r"token (\d+)", out)[1])

    assert code == 0
    assert first not in listing and second not in listing
    assert first[:8] in listing and "deploy" in listing
    assert (await api.client(first).get("/api/v1/users")).status_code == 200  # --admin
    assert (await api.client(second).get("/api/v1/me")).json()["username"] == "carol"

    code, out, _ = await run("token", "revoke", str(second_id))
    assert code == 0 and "revoked" in out
    assert (await api.client(second).get("/api/v1/me")).status_code == 401
    assert (await api.client(first).get("/api/v1/me")).status_code == 200

    code, _, err = await run("user", "create", "carol", "--email", "other@example.com")
    assert code == 1 and "already exists" in err
    code, _, err = await run("user", "create", "no spaces", "--email", "x@example.com")
    assert code == 1 and "username" in err
    code, _, err = await run("token", "create", "nobody")
    assert code == 1 and "no user" in err
