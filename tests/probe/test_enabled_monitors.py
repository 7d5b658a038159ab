"""What the scheduler loads at each refresh: unchanged rows keep their Monitor, any change makes a new one."""

from __future__ import annotations

import asyncpg
import pytest

from uptimed.monitor import HttpOptions, MonitorFields
from uptimed.store import monitors


@pytest.fixture
async def owner(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("INSERT INTO users (username, email) VALUES ('alice', 'alice@localhost') RETURNING id")


def fields(name: str, **changes: object) -> MonitorFields:
    return MonitorFields(**{"name": name, "target": f"http://127.0.0.1:9/{name}", **changes})


async def test_an_unchanged_row_keeps_its_monitor_and_an_edited_one_gets_a_new_one(
    pool: asyncpg.Pool, owner: int
) -> None:
    a = await monitors.create(pool, owner, fields("a"))
    b = await monitors.create(pool, owner, fields("b"))
    first = await monitors.list_enabled(pool)
    assert [m.id for m in first] == [a.id, b.id]

    await monitors.update_owned(pool, owner, b.id, fields("b", target="http://127.0.0.1:9/moved"))
    second = await monitors.list_enabled(pool)

    assert second[0] is first[0]
    assert second[1] is not first[1]
    assert second[1].target == "http://127.0.0.1:9/moved"
    assert (await monitors.list_enabled(pool))[1] is second[1]


async def test_an_options_change_alone_makes_a_new_monitor(pool: asyncpg.Pool, owner: int) -> None:
    m = await monitors.create(pool, owner, fields("api", http=HttpOptions(json_path="ok", json_equals=1)))
    (before,) = await monitors.list_enabled(pool)
    assert before.http.json_equals == 1

    # Not even updated_at changes, and decoded {"json_equals": 1} == {"json_equals": true} in Python.
    await pool.execute(
        """UPDATE monitors SET options = '{"http": {"json_path": "ok", "json_equals": true}}' WHERE id = $1""", m.id
    )
    (after,) = await monitors.list_enabled(pool)

    assert after is not before
    assert after.http.json_equals is True


async def test_a_touched_row_makes_a_new_monitor(pool: asyncpg.Pool, owner: int) -> None:
    m = await monitors.create(pool, owner, fields("a"))
    (before,) = await monitors.list_enabled(pool)

    await pool.execute("UPDATE monitors SET updated_at = updated_at + interval '1 second' WHERE id = $1", m.id)

    (after,) = await monitors.list_enabled(pool)
    assert after is not before and after == before


async def test_disabled_and_deleted_monitors_disappear_and_are_not_kept(pool: asyncpg.Pool, owner: int) -> None:
    a = await monitors.create(pool, owner, fields("a"))
    b = await monitors.create(pool, owner, fields("b"))
    c = await monitors.create(pool, owner, fields("c"))
    assert len(await monitors.list_enabled(pool)) == 3

    await monitors.toggle_owned(pool, owner, b.id)
    await monitors.delete_owned(pool, owner, c.id)
    (left,) = await monitors.list_enabled(pool)
    assert left.id == a.id
    # What is kept for the next call is the last answer only: it cannot grow without bound.
    assert set(monitors._enabled) == {a.id}

    resumed = await monitors.toggle_owned(pool, owner, b.id)
    assert resumed is not None
    assert [m.id for m in await monitors.list_enabled(pool)] == [a.id, b.id]
