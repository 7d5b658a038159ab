"""``uptimed export`` and ``uptimed import`` against the real PostgreSQL: a round trip into an empty database."""

from __future__ import annotations

import asyncio
import tomllib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from uptimed.channels.registry import default_registry
from uptimed.cli import main
from uptimed.config import DatabaseSettings
from uptimed.maintenance import MaintenanceIn
from uptimed.monitor import MonitorFields
from uptimed.rules import maintenance as windows
from uptimed.rules import owned
from uptimed.rules.integrations import name_of
from uptimed.store import integrations, maintenance, monitors, users
from uptimed.store.database import connect

pytestmark = pytest.mark.usefixtures("clean_env")

HOOK_SECRET = "hmac-s3cret-value"
HOOK_URL = "https://hooks.example/path-with-token-123"


@pytest.fixture
async def empty(services: dict[str, str], template_database: str) -> AsyncIterator[str]:
    """A second fresh database, to import into."""
    admin = services["UPTIMED_DATABASE__DSN"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    await conn.close()
    yield admin.rsplit("/", 1)[0] + "/" + name
    conn = await asyncpg.connect(admin)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.close()


async def run(argv: list[str]) -> int:
    """The CLI, off the event loop the test's own pool runs on (it runs one of its own)."""
    return await asyncio.to_thread(main, argv)


def config(tmp_path: Path, dsn: str, name: str) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[database]\ndsn = "{dsn}"\n[probe]\nregions = ["eu", "us"]\n')
    return str(path)


async def seed(pool: asyncpg.Pool) -> int:
    alice = await users.create(pool, "alice", "alice@example.com")
    hook = await owned.create_integration(
        pool,
        alice.id,
        "webhook",
        {"webhookUrl": HOOK_URL, "secret": HOOK_SECRET, "headers": {"X-Team": "ops"}, "timeout": 5.0},
        name="Ops hook",
    )
    mail = await owned.create_integration(pool, alice.id, "email", {"email": "oncall@example.com"}, name=None)
    await owned.toggle(pool, mail)
    shop = await owned.create_monitor(
        pool,
        alice.id,
        MonitorFields.model_validate(
            {
                "name": "shop",
                "target": "https://shop.example/health",
                "interval": "30s",
                "regions": ["eu"],
                "tags": ["eu", "payments"],
                "repeat_interval": "1h",
                "http": {"method": "HEAD", "accepted_statuses": ["200-299", "418"], "keyword": "ok"},
            }
        ),
        notify=[hook.id],
    )
    await owned.create_monitor(
        pool, alice.id, MonitorFields(name="db", kind="tcp", target="db.example:5432", tags=["db"])
    )
    await owned.create_monitor(pool, alice.id, MonitorFields(name="shop", target="https://shop2.example/"))
    await windows.create(
        pool,
        alice.id,
        MaintenanceIn(name="backups", days=["sun"], at="02:00", duration=7200, time_zone="Europe/Berlin", tags=["db"]),
    )
    await windows.create(
        pool,
        alice.id,
        MaintenanceIn(name="deploy", start="2030-01-01T10:00:00Z", end="2030-01-01T11:00:00Z", monitor_ids=[shop.id]),
    )
    return alice.id


async def snapshot(pool: asyncpg.Pool) -> dict[str, Any]:
    """What a user has, by names: comparable across databases whose ids differ."""
    alice = await users.get_by_username(pool, "alice")
    assert alice is not None
    shown = [o.monitor for o in await monitors.page_overviews(pool, alice.id, after_id=None, limit=100)]
    names = {m.id: m.target for m in shown}  # two monitors may share a name, not here a target
    hooks = await integrations.page_for_owner(pool, alice.id, before_id=None, limit=100)
    hook_names = {h.id: name_of(default_registry(), h) for h in hooks}
    routed: dict[int, set[str]] = {}
    for r in await pool.fetch("SELECT * FROM monitor_integrations"):
        routed.setdefault(r["integration_id"], set()).add(names[r["monitor_id"]])
    return {
        "monitors": sorted(
            (
                m.model_dump_json(include=set(MonitorFields.model_fields)),
                # routing, as the one rule says it: the integrations each monitor reaches
                tuple(
                    sorted(
                        hook_names[h.id]
                        for h in hooks
                        if (m.notify_integrations is None or h.id in m.notify_integrations)
                        and (h.id not in routed or m.target in routed[h.id])
                    )
                ),
            )
            for m in shown
        ),
        "integrations": sorted(
            (hook_names[h.id], h.type, h.enabled, tuple(sorted(h.config.items(), key=str))) for h in hooks
        ),
        "maintenance": sorted(
            (
                w.model_dump_json(exclude={"id", "owner_id", "config_key", "monitor_ids"}),
                tuple(sorted(names[i] for i in w.monitor_ids)),
            )
            for w in await maintenance.for_owner(pool, alice.id)
        ),
    }


async def test_export_then_import_into_an_empty_database_gives_the_same_objects(
    pool: asyncpg.Pool, database: str, empty: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(pool)
    exported = tmp_path / "alice.toml"
    assert (
        await run(
            ["export", "--user", "alice", "--secrets", "-o", str(exported), "-c", config(tmp_path, database, "a")]
        )
        == 0
    )
    text = exported.read_text()
    assert exported.stat().st_mode & 0o077 == 0  # secrets inside: the owner's eyes only
    parsed = tomllib.loads(text)
    assert [m["key"] for m in parsed["monitors"]] == ["shop", "db", "shop-2"]
    # Routing from the integrations' side, as the file says it: the shop chose the hook only.
    hook, mail = parsed["integrations"]
    assert (hook["name"], "monitors" in hook) == ("Ops hook", False)
    assert (mail["name"], mail["monitors"], mail["enabled"]) == ("Email to oncall@example.com", ["db", "shop-2"], False)
    assert {w["name"] for w in parsed["maintenance"]} == {"backups", "deploy"}

    assert await run(["import", str(exported), "-c", config(tmp_path, empty, "b")]) == 0
    assert "imported 3 monitors, 2 integrations, 2 maintenance windows, users created: alice" in capsys.readouterr().out
    target = await connect(DatabaseSettings(dsn=empty))
    try:
        after, before = await snapshot(target), await snapshot(pool)
        for part in before:
            assert after[part] == before[part], part
    finally:
        await target.close()


async def test_without_the_flag_no_secret_leaves_and_the_import_says_what_is_missing(
    pool: asyncpg.Pool, database: str, empty: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(pool)
    capsys.readouterr()
    assert await run(["export", "--user", "alice", "-c", config(tmp_path, database, "a")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# uptimed export of alice")  # nothing but the file on standard output
    assert HOOK_SECRET not in text and "path-with-token" not in text and "X-Team" not in text
    assert "# left out, secret: headers, secret, webhookUrl" in text

    # Checked as a whole before anything is written: nothing at all arrives.
    exported = tmp_path / "alice.toml"
    exported.write_text(text)
    assert await run(["import", str(exported), "-c", config(tmp_path, empty, "b")]) == 2
    err = capsys.readouterr().err
    assert "integrations[0].config.webhookUrl: is required" in err
    assert f"{exported}:" in err  # with the line
    target = await connect(DatabaseSettings(dsn=empty))
    try:
        assert await target.fetchval("SELECT count(*) FROM monitors") == 0
        assert await target.fetchval("SELECT count(*) FROM users") == 0
    finally:
        await target.close()


async def test_import_as_another_user(pool: asyncpg.Pool, database: str, tmp_path: Path) -> None:
    await seed(pool)
    exported = tmp_path / "alice.toml"
    cfg = config(tmp_path, database, "a")
    assert await run(["export", "--user", "alice", "--secrets", "-o", str(exported), "-c", cfg]) == 0
    assert await run(["import", str(exported), "--user", "bob", "-c", cfg]) == 0
    bob = await users.get_by_username(pool, "bob")
    assert bob is not None
    assert len(await monitors.owned_ids(pool, bob.id)) == 3
    assert await run(["export", "--user", "nobody", "-c", cfg]) == 1
