"""Versioned migrations against the real PostgreSQL.

The steps of migrations/ build exactly the schema that schema.sql writes out
(and, for each past version, exactly the schema.sql that version shipped); a
database created by every past version upgrades with all its rows, its
checks rolled up into check_hours; a database newer than the code is refused
by `uptimed migrate` and by `uptimed run`, untouched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import asyncpg
import pytest

from tests.support import ROOT, Stack
from uptimed.cli import main
from uptimed.config import DatabaseSettings
from uptimed.store.database import DatabaseTooNew, Step, connect, migrate, schema_sql, schema_version, steps

pytestmark = pytest.mark.usefixtures("clean_env")

LATEST = steps()[-1].version

# What a database's schema is, read from the catalog: every query names its
# objects, so the comparison says what differs. Column order is left out on
# purpose (ALTER TABLE ADD COLUMN appends; schema.sql may group columns).
CATALOG = {
    "relations": """
        SELECT c.relname, c.relkind::text FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
    """,
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
               coalesce(co.collname, '')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped
    """,
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype::text, pg_get_constraintdef(oid, true) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
    """,
    "indexes": """
        SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'
    """,
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid, true) FROM pg_trigger WHERE NOT tgisinternal
    """,
    "functions": """
        SELECT proname, pg_get_function_identity_arguments(oid), pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace
    """,
    "sequences": """
        SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by, cycle, cache_size
        FROM pg_sequences WHERE schemaname = 'public'
    """,
    "sequence_owners": """
        SELECT s.relname, t.relname, a.attname FROM pg_depend d
        JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE s.relnamespace = 'public'::regnamespace AND d.deptype IN ('a', 'i')
    """,
    "types": """
        SELECT t.typname, t.typtype::text FROM pg_type t
        WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm')
    """,
    "extensions": "SELECT extname FROM pg_extension",
}


async def catalog(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sorted(tuple(row) for row in await conn.fetch(sql)) for name, sql in CATALOG.items()}


def differences(left: dict[str, list[tuple[Any, ...]]], right: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """Per kind of object, what only one side has: empty when the schemas are the same."""
    out: dict[str, Any] = {}
    for name in CATALOG:
        only_left = sorted(set(left[name]) - set(right[name]))
        only_right = sorted(set(right[name]) - set(left[name]))
        if only_left or only_right:
            out[name] = {"only in the first": only_left, "only in the second": only_right}
    return out


NewDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
async def new_database(services: dict[str, str]) -> AsyncIterator[NewDatabase]:
    """``await new_database()`` -> the DSN of an empty database, dropped after the test."""
    admin_dsn = services["UPTIMED_DATABASE__DSN"]
    admin = await asyncpg.connect(admin_dsn)
    made: list[str] = []

    async def make() -> str:
        name = f"t_mig_{uuid.uuid4().hex[:12]}"
        await admin.execute(f"CREATE DATABASE {name}")
        made.append(name)
        return admin_dsn.rsplit("/", 1)[0] + "/" + name

    try:
        yield make
    finally:
        for name in made:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()


async def migrated(dsn: str, plan: list[Step] | None = None) -> tuple[str, ...]:
    pool = await connect(DatabaseSettings(dsn=dsn))
    try:
        return (await migrate(pool, plan=plan)).applied
    finally:
        await pool.close()


async def schema_of(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return await catalog(conn)
    finally:
        await conn.close()


async def run_sql(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_steps_are_numbered_from_one_and_schema_sql_names_the_last() -> None:
    assert [s.version for s in steps()] == list(range(1, LATEST + 1))
    assert schema_version(schema_sql()) == LATEST


async def test_the_steps_build_what_schema_sql_describes(new_database: NewDatabase) -> None:
    from_steps, from_file = await new_database(), await new_database()
    assert await migrated(from_steps) == tuple(s.name for s in steps())
    await run_sql(from_file, schema_sql())

    built, written = await schema_of(from_steps), await schema_of(from_file)
    assert differences(built, written) == {}
    assert {row[0] for row in built["relations"]} >= {"users", "monitors", "checks", "check_hours", "notification_log"}
    assert built["triggers"] and built["functions"], "the comparison sees triggers and functions"


# The commits whose schema.sql was each version as it shipped, before the steps existed.
SHIPPED = {1: "2939555", 2: "f9f6e7c", 3: "e52b414", 4: "d0f5132"}


def shipped_schema(version: int) -> str:
    if shutil.which("git") is None:
        pytest.skip("needs git to read the schema.sql that shipped")
    found = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{SHIPPED[version]}:schema.sql"], capture_output=True, text=True, check=False
    )
    if found.returncode:
        pytest.skip(f"needs the git history (commit {SHIPPED[version]}); a shallow clone lacks it")
    return found.stdout


@pytest.mark.parametrize("version", sorted(SHIPPED))
async def test_steps_up_to_a_past_version_build_the_schema_that_version_shipped(
    new_database: NewDatabase, version: int
) -> None:
    old_sql = shipped_schema(version)
    assert schema_version(old_sql) == version
    from_steps, from_file = await new_database(), await new_database()
    await migrated(from_steps, steps()[:version])
    await run_sql(from_file, old_sql)
    assert differences(await schema_of(from_steps), await schema_of(from_file)) == {}


# A past version's database, with something in every table it had.

CHECKS_SQL = [
    """
    INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms, status_code, error_class, error)
    SELECT $1, 'eu', TIMESTAMPTZ '2026-11-01 10:00:00+00' + make_interval(mins => n),
           CASE WHEN n < 15 THEN 'down' ELSE 'up' END, CASE WHEN n < 15 THEN NULL ELSE 20 + n % 7 END,
           CASE WHEN n < 15 THEN 503 ELSE 200 END, CASE WHEN n < 15 THEN 'http_status' END,
           CASE WHEN n < 15 THEN 'status 503' END
    FROM generate_series(0, 119) n
    """,
    """
    INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms)
    SELECT $1, 'us', TIMESTAMPTZ '2026-11-01 10:30:00+00' + make_interval(mins => 2 * n), 'up', 40
    FROM generate_series(0, 29) n
    """,
    """
    INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms)
    SELECT $1, 'eu', TIMESTAMPTZ '2026-11-01 10:00:00+00' + make_interval(mins => 5 * n), 'up', NULL
    FROM generate_series(0, 11) n
    """,
]

# check_hours for CHECKS_SQL (the first two of monitor a, the last of b): (monitor, region, hour, checks, up, up_ms_sum, up_ms_count).
EXPECTED_HOURS = [
    ("a", "eu", 10, 60, 45, float(sum(20 + n % 7 for n in range(15, 60))), 45),
    ("a", "eu", 11, 60, 60, float(sum(20 + n % 7 for n in range(60, 120))), 60),
    ("a", "us", 10, 15, 15, 600.0, 15),
    ("a", "us", 11, 15, 15, 600.0, 15),
    ("b", "eu", 10, 12, 12, 0.0, 0),
]


async def fill(conn: asyncpg.Connection, version: int) -> None:
    """Rows in every table a database of ``version`` has (check_hours excepted: what the steps must fill)."""
    alice = await conn.fetchval(
        "INSERT INTO users (username, email, is_admin) VALUES ('alice', 'alice@example.com', true) RETURNING id"
    )
    bob = await conn.fetchval("INSERT INTO users (username, email) VALUES ('bob', 'bob@localhost') RETURNING id")
    await conn.execute(
        "INSERT INTO api_tokens (user_id, name, prefix, token_hash, last_used_at) VALUES ($1, 'ci', 'upt_abcd', $2, now())",
        alice,
        b"\x01" * 32,
    )
    await conn.execute(
        "INSERT INTO api_tokens (user_id, prefix, token_hash, revoked_at) VALUES ($1, 'upt_efgh', $2, now())",
        bob,
        b"\x02" * 32,
    )
    a = await conn.fetchval(
        """
        INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s, regions, quorum, repeat_interval_s, options)
        VALUES ($1, 'a', 'https://a.example/', 60, 10, '{eu,us}', 2, 3600, '{"http": {"method": "HEAD"}}')
        RETURNING id
        """,
        alice,
    )
    b = await conn.fetchval(
        """
        INSERT INTO monitors (owner_id, config_key, name, kind, target, interval_s, timeout_s, enabled)
        VALUES ($1, 'db', 'b', 'tcp', 'db.example:5432', 300, 5, false) RETURNING id
        """,
        bob,
    )
    for sql, monitor in zip(CHECKS_SQL, (a, a, b), strict=True):
        await conn.execute(sql, monitor)
    await conn.execute(
        "INSERT INTO monitor_state (monitor_id, state) VALUES ($1, $2)", a, json.dumps({"status": "up", "regions": {}})
    )
    await conn.execute(
        """
        INSERT INTO incidents (monitor_id, opened_at, resolved_at, cause) VALUES
            ($1, TIMESTAMPTZ '2026-11-01 10:00:00+00', TIMESTAMPTZ '2026-11-01 10:15:00+00', 'status 503'),
            ($1, TIMESTAMPTZ '2026-11-02 08:00:00+00', NULL, 'timeout')
        """,
        a,
    )
    await conn.execute(
        """
        INSERT INTO event_outbox (event_id, monitor_id, payload, published_at) VALUES
            ('0b0f7f0e-0000-4000-8000-000000000001', $1, '{"type": "website.down"}', now()),
            ('0b0f7f0e-0000-4000-8000-000000000002', $1, '{"type": "website.up"}', NULL)
        """,
        a,
    )
    # From version 9 an integration may have a name.
    named = (", name", ", 'Hook'") if version >= 9 else ("", "")
    hook = await conn.fetchval(
        f"""INSERT INTO integrations (owner_id, type, config{named[0]}) VALUES ($1, 'webhook', '{{"webhookUrl": "https://h.example/", "secret": "s3cret-s3cret"}}'{named[1]}) RETURNING id""",
        alice,
    )
    await conn.execute(
        f"""INSERT INTO integrations (owner_id, type, config, enabled, config_key{named[0]}) VALUES ($1, 'slack', '{{"webhookUrl": "https://hooks.slack.com/x"}}', false, 'ops'{named[1]})""",
        bob,
    )
    await conn.execute("INSERT INTO monitor_integrations (monitor_id, integration_id) VALUES ($1, $2)", a, hook)
    await conn.execute(
        """
        INSERT INTO notification_log (event_id, event_type, integration_id, user_id, monitor_id, status, attempts,
                                      payload, error_message, sent_at)
        VALUES ('0b0f7f0e-0000-4000-8000-000000000001', 'website.down', $1, $2, $3, 'SENT', 1, '{}', NULL, now()),
               ('0b0f7f0e-0000-4000-8000-000000000002', 'website.up', $1, $2, $3, 'FAILED', 6, '{}', 'HTTP 500', NULL)
        """,
        hook,
        alice,
        a,
    )
    await conn.execute(
        """
        INSERT INTO event_outbox (event_id, monitor_id, payload, created_at) VALUES
            ('0b0f7f0e-0000-4000-8000-000000000003', $1, '{"type": "website.down"}', now() + interval '1 second'),
            ('0b0f7f0e-0000-4000-8000-000000000004', $1, '{"type": "website.up"}', now() + interval '2 seconds')
        """,
        b,
    )
    if version >= 4:
        await conn.execute("UPDATE monitor_state SET wake_at = TIMESTAMPTZ '2026-11-02 09:00:00+00'")
        await conn.execute("INSERT INTO region_activity (region, last_result_at) VALUES ('eu', now()), ('us', now())")
    if version >= 2:
        await conn.execute(
            """
            INSERT INTO web_sessions (token_hash, user_id, csrf_token, notice, expires_at)
            VALUES ($1, $2, 'csrf', 'Saved “a”.', now() + interval '14 days')
            """,
            b"\x03" * 32,
            alice,
        )
        await conn.execute(
            "INSERT INTO status_pages (owner_id, slug, title, published, monitor_ids) VALUES ($1, 'alice', 'Alice', true, $2)",
            alice,
            [a],
        )


async def rows(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table but the two the steps write themselves."""
    tables = [
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        if r["tablename"] not in ("schema_version", "check_hours")
    ]
    found: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        data = [json.loads(r[0]) for r in await conn.fetch(f"SELECT to_jsonb(t)::text FROM {table} t")]
        found[table] = sorted(data, key=lambda row: json.dumps(row, sort_keys=True))
    return found


def kept(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """What of ``before`` is not in ``after`` (columns a later step added are not compared)."""
    lost: dict[str, Any] = {}
    for table, old in before.items():
        columns = set(old[0]) if old else set()
        new = sorted(
            ({k: v for k, v in row.items() if k in columns} for row in after.get(table, [])),
            key=lambda row: json.dumps(row, sort_keys=True),
        )
        if new != old:
            lost[table] = {"before": old, "after": new}
    return lost


async def hours(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    found = await conn.fetch(
        """
        SELECT m.name, h.region, extract(hour FROM h.hour AT TIME ZONE 'UTC')::int, h.checks, h.up, h.up_ms_sum,
               h.up_ms_count
        FROM check_hours h JOIN monitors m ON m.id = h.monitor_id ORDER BY 1, 2, 3
        """
    )
    return [tuple(r) for r in found]


@pytest.mark.parametrize("version", range(1, LATEST + 1))
async def test_a_database_of_each_past_version_upgrades_keeping_every_row(
    new_database: NewDatabase, database: str, tmp_path, capsys, version: int
) -> None:
    dsn = await new_database()
    await migrated(dsn, steps()[:version])
    conn = await asyncpg.connect(dsn)
    # The version applied schema.sql whole and recorded only its own number.
    await conn.execute(f"DELETE FROM schema_version; INSERT INTO schema_version (version) VALUES ({version})")
    async with conn.transaction():
        await fill(conn, version)
    before = await rows(conn)
    config = tmp_path / "uptimed.toml"
    config.write_text(f'[database]\ndsn = "{dsn}"\n')
    capsys.readouterr()

    assert await anyio.to_thread.run_sync(main, ["migrate", "-c", str(config)]) == 0

    out = capsys.readouterr().out
    later = [s.name for s in steps()[version:]]
    assert [line.removeprefix("applied ") for line in out.splitlines() if line.startswith("applied ")] == later
    assert out.splitlines()[-1] == (
        f"schema version {LATEST}: applied {len(later)} step{'s' * (len(later) != 1)}"
        if later
        else f"schema version {LATEST}: already up to date"
    )
    assert kept(before, await rows(conn)) == {}
    # The checks stored before check_hours existed are rolled up as if the trigger had seen them.
    assert await hours(conn) == EXPECTED_HOURS
    assert [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")] == list(
        range(version, LATEST + 1)
    )
    assert differences(await catalog(conn), await schema_of(database)) == {}, "the same schema as a new database's"
    # Events waiting in the outbox keep the order they were written in.
    assert [r[0][-1] for r in await conn.fetch("SELECT event_id::text FROM event_outbox ORDER BY seq")] == list("1234")
    # And new checks are rolled up as they come.
    await conn.execute(
        "INSERT INTO checks (monitor_id, region, checked_at, status) SELECT id, 'us', TIMESTAMPTZ '2026-11-01 11:59:00+00', 'down' FROM monitors WHERE name = 'a'"
    )
    assert (await hours(conn))[3][3:5] == (16, 15)
    await conn.close()


async def test_processes_migrating_at_once_apply_each_step_once(new_database: NewDatabase) -> None:
    dsn = await new_database()
    results: list[tuple[str, ...]] = []

    async def one() -> None:
        results.append(await migrated(dsn))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(one)
    assert sorted(name for applied in results for name in applied) == [s.name for s in steps()]
    conn = await asyncpg.connect(dsn)
    assert [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY 1")] == list(
        range(1, LATEST + 1)
    )
    await conn.close()


async def test_a_failing_step_leaves_the_database_at_the_version_before_it(new_database: NewDatabase) -> None:
    dsn = await new_database()
    broken = Step(LATEST + 1, f"{LATEST + 1:04d}_broken.sql", "CREATE TABLE half_done (id int); SELECT 1 / 0;")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrated(dsn, [*steps(), broken])
    conn = await asyncpg.connect(dsn)
    assert await conn.fetchval("SELECT max(version) FROM schema_version") == LATEST
    assert await conn.fetchval("SELECT to_regclass('half_done')") is None
    await conn.close()


async def newer_than_the_code(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", LATEST + 1)
    schema = await catalog(conn)
    await conn.close()
    return schema


async def test_migrate_refuses_a_database_newer_than_the_code(database: str, tmp_path, capsys) -> None:
    schema = await newer_than_the_code(database)
    config = tmp_path / "uptimed.toml"
    config.write_text(f'[database]\ndsn = "{database}"\n')

    assert await anyio.to_thread.run_sync(main, ["migrate", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"uptimed: postgresql: the database is at schema version {LATEST + 1}, newer than this uptimed" in err
    assert f"(up to {LATEST})" in err
    assert await schema_of(database) == schema
    with pytest.raises(DatabaseTooNew):
        await migrated(database)


async def test_run_refuses_a_database_newer_than_the_code(stack: Stack, start_daemon) -> None:
    await newer_than_the_code(stack.dsn)
    daemon = await start_daemon(stack.toml(), wait_ready=False)
    assert await daemon.process.wait() == 1
    await daemon._reader
    assert any(f"schema version {LATEST + 1}, newer than this uptimed" in line for line in daemon.raw), daemon.raw[-5:]
    assert not daemon.events("daemon.ready")
