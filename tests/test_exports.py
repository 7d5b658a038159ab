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
from uptimed.escalation_policy import PolicyFields
from uptimed.maintenance import MaintenanceIn
from uptimed.monitor import MonitorFields
from uptimed.rules import maintenance as windows
from uptimed.rules import owned
from uptimed.rules.integrations import name_of
from uptimed.store import escalation_policies, integrations, maintenance, monitors, users
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
    on_call = await escalation_policies.create(
        pool,
        alice.id,
        PolicyFields.model_validate(
            {
                "name": "Ops on call",
                "repeat_every": "15m",
                "steps": [
                    {"name": "on call", "after": 0, "integrations": [hook.id]},
                    {"after": "10m", "integrations": [mail.id, hook.id]},
                ],
            }
        ),
    )
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
                "escalation_policy_id": on_call.id,
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


async def counts(dsn: str, *tables: str) -> list[int]:
    """How many rows each of ``tables`` holds in the database at ``dsn``."""
    target = await connect(DatabaseSettings(dsn=dsn))
    try:
        return [await target.fetchval(f"SELECT count(*) FROM {table}") for table in tables]
    finally:
        await target.close()


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
    policies = await escalation_policies.list_for_owner(pool, alice.id)
    policy_names = {p.id: p.name for p in policies}
    return {
        "monitors": sorted(
            (
                m.model_dump_json(include=set(MonitorFields.model_fields) - {"escalation_policy_id"}),
                policy_names.get(m.escalation_policy_id or 0),
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
        "escalation_policies": sorted(
            (
                p.name,
                p.repeat_every_s,
                tuple(
                    (st.name, st.after_s, tuple(sorted(hook_names[i] for i in st.integration_ids))) for st in p.steps
                ),
            )
            for p in policies
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
    # The policy and the monitor that uses it name each other and their integrations by key, as the config file does.
    [policy] = parsed["escalation_policies"]
    assert (policy["key"], policy["repeat_every"]) == ("Ops on call", 900.0)
    assert [(s.get("name"), s["after"], s["integrations"]) for s in policy["steps"]] == [
        ("on call", 0.0, [hook["key"]]),
        (None, 600.0, [hook["key"], mail["key"]]),  # in id order
    ]
    assert parsed["monitors"][0]["escalation_policy"] == "Ops on call" and "escalation_policy_id" not in text

    assert await run(["import", str(exported), "-c", config(tmp_path, empty, "b")]) == 0
    assert (
        "imported 3 monitors, 2 integrations, 2 maintenance windows, 1 escalation policy, users created: alice"
        in capsys.readouterr().out
    )
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
    assert await counts(empty, "monitors", "users") == [0, 0]


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


async def test_an_import_whose_policy_names_an_unknown_integration_writes_nothing(
    empty: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "alice.toml"
    exported.write_text(
        '[[monitors]]\nowner = "alice"\nkey = "shop"\nname = "shop"\ntarget = "https://shop.example/"\n'
        'escalation_policy = "ops"\n\n'
        '[[escalation_policies]]\nowner = "alice"\nkey = "ops"\nname = "Ops"\n'
        '[[escalation_policies.steps]]\nafter = 0\nintegrations = ["pager"]\n'
    )
    assert await run(["import", str(exported), "-c", config(tmp_path, empty, "b")]) == 2
    err = capsys.readouterr().err
    assert (
        f"{exported}:14: escalation_policies[0].steps[0].integrations: "
        "'alice' has no integration with key 'pager' in this file"
    ) in err
    assert await counts(empty, "monitors", "integrations", "escalation_policies", "users") == [0, 0, 0, 0]
