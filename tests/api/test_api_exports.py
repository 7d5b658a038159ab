"""``GET /api/v1/export``: the caller's objects as TOML in the config file's format, secrets only when asked."""

from __future__ import annotations

import tomllib

from tests.api.conftest import Person, monitor_body


async def test_export_is_the_config_format_and_keeps_secrets_back_unless_asked(alice: Person, bob: Person) -> None:
    hook = await alice.client.post(
        "/api/v1/integrations",
        json={"type": "webhook", "name": "Ops", "config": {"webhookUrl": "https://hooks.example/t0ken-path"}},
    )
    await alice.client.post("/api/v1/monitors", json=monitor_body(tags=["eu"], integrations=[hook.json()["id"]]))
    await bob.client.post("/api/v1/monitors", json=monitor_body(name="bob's"))

    plain = await alice.client.get("/api/v1/export")
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/toml")
    assert "t0ken-path" not in plain.text and "bob's" not in plain.text
    data = tomllib.loads(plain.text)
    assert [(m["owner"], m["key"], m["tags"]) for m in data["monitors"]] == [("alice", "shop", ["eu"])]
    assert data["integrations"][0]["name"] == "Ops" and "webhookUrl" not in data["integrations"][0]["config"]

    full = await alice.client.get("/api/v1/export", params={"secrets": "true"})
    assert tomllib.loads(full.text)["integrations"][0]["config"]["webhookUrl"] == "https://hooks.example/t0ken-path"
