"""`uptimed migrate` against the real PostgreSQL: applies once, then changes nothing."""

from __future__ import annotations

import anyio
import asyncpg
import pytest

from tests.support import Stack
from uptimed.cli import main
from uptimed.config import DatabaseSettings
from uptimed.store.database import connect, migrate, steps

pytestmark = pytest.mark.usefixtures("clean_env")

LATEST = steps()[-1].version

SNAPSHOT = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public'
ORDER BY table_name, ordinal_position
"""


async def fresh_database(admin_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


async def test_migrate_applies_once_then_changes_nothing(services, tmp_path, capsys) -> None:
    dsn = await fresh_database(services["UPTIMED_DATABASE__DSN"], "t_migrate")
    config = tmp_path / "uptimed.toml"
    config.write_text(f'[database]\ndsn = "{dsn}"\n')

    assert await anyio.to_thread.run_sync(main, ["migrate", "-c", str(config)]) == 0
    assert f"schema version {LATEST}: applied" in capsys.readouterr().out
    conn = await asyncpg.connect(dsn)
    tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "api_tokens", "monitors", "checks", "integrations", "notification_log", "incidents"} <= tables
    before = await conn.fetch(SNAPSHOT)
    versions_before = await conn.fetch("SELECT version, applied_at FROM schema_version")

    assert await anyio.to_thread.run_sync(main, ["migrate", "-c", str(config)]) == 0
    assert f"schema version {LATEST}: already up to date" in capsys.readouterr().out
    assert await conn.fetch(SNAPSHOT) == before
    assert await conn.fetch("SELECT version, applied_at FROM schema_version") == versions_before
    await conn.close()


async def test_notification_log_is_unique_per_event_and_integration(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.dsn)
    user = await conn.fetchval("INSERT INTO users (username, email) VALUES ('a', 'a@x') RETURNING id")
    integration = await conn.fetchval(
        "INSERT INTO integrations (owner_id, type, config) VALUES ($1, 'webhook', '{}') RETURNING id", user
    )
    insert = """
        INSERT INTO notification_log (event_id, event_type, integration_id, user_id, payload)
        VALUES ('6f1c1f5e-3c1b-4a3e-9d7e-0a2b7a9f0c11', 'website.down', $1, $2, '{}')
        ON CONFLICT (event_id, integration_id) DO NOTHING
    """
    assert await conn.execute(insert, integration, user) == "INSERT 0 1"
    assert await conn.execute(insert, integration, user) == "INSERT 0 0"
    # Deleting the user removes what hangs off it.
    await conn.execute("DELETE FROM users WHERE id = $1", user)
    assert await conn.fetchval("SELECT count(*) FROM notification_log") == 0
    await conn.close()


async def test_migrate_reports_an_unreachable_database(tmp_path, capsys) -> None:
    config = tmp_path / "uptimed.toml"
    config.write_text('[database]\ndsn = "postgresql://nobody:hunter2@127.0.0.1:1/x"\nconnect_timeout = 2\n')
    assert await anyio.to_thread.run_sync(main, ["migrate", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "postgresql: cannot connect" in err
    assert "hunter2" not in err


async def test_migrate_upgrades_a_version_1_database_keeping_its_data(services, tmp_path, capsys) -> None:
    dsn = await fresh_database(services["UPTIMED_DATABASE__DSN"], "t_migrate_upgrade")
    config = tmp_path / "uptimed.toml"
    config.write_text(f'[database]\ndsn = "{dsn}"\n')
    # What version 1 had: no web sessions, no status pages, no hourly roll-ups.
    pool = await connect(DatabaseSettings(dsn=dsn))
    await migrate(pool, plan=steps()[:1])
    await pool.close()
    conn = await asyncpg.connect(dsn)
    owner = await conn.fetchval("INSERT INTO users (username, email) VALUES ('kept', 'kept@example.com') RETURNING id")
    monitor = await conn.fetchval(
        "INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s) VALUES ($1, 'm', 'https://m/', 60, 10) RETURNING id",
        owner,
    )
    await conn.execute(
        """
        INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms)
        SELECT $1, 'eu', TIMESTAMPTZ '2026-11-01 10:00:00+00' + make_interval(mins => n), CASE WHEN n < 15 THEN 'down' ELSE 'up' END, 20
        FROM generate_series(0, 119) n
        """,
        monitor,
    )
    capsys.readouterr()

    assert await anyio.to_thread.run_sync(main, ["migrate", "-c", str(config)]) == 0
    assert f"schema version {LATEST}: applied" in capsys.readouterr().out
    assert await conn.fetchval("SELECT count(*) FROM web_sessions") == 0
    assert await conn.fetchval("SELECT count(*) FROM status_pages") == 0
    assert await conn.fetchval("SELECT username FROM users") == "kept"
    # The checks stored before are rolled up; new ones are rolled up as they come.
    hours = await conn.fetch("SELECT checks, up FROM check_hours ORDER BY hour")
    assert [tuple(h) for h in hours] == [(60, 45), (60, 60)]
    await conn.execute(
        "INSERT INTO checks (monitor_id, region, checked_at, status) VALUES ($1, 'eu', TIMESTAMPTZ '2026-11-01 11:30:30+00', 'up')",
        monitor,
    )
    assert await conn.fetchval("SELECT checks FROM check_hours ORDER BY hour DESC LIMIT 1") == 61
    await conn.close()
