"""The monitor feed against the real PostgreSQL: one read at start, then each change as it is notified."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest
from pydantic import ValidationError

from tests.support import eventually
from uptimed.monitor import HttpOptions, Monitor, MonitorFields
from uptimed.store import monitors
from uptimed.store.monitor_feed import MonitorFeed, MonitorListener


@pytest.fixture
async def owner(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("INSERT INTO users (username, email) VALUES ('alice', 'alice@localhost') RETURNING id")


@pytest.fixture
async def feed(pool: asyncpg.Pool) -> AsyncIterator[MonitorFeed]:
    feed = MonitorFeed()
    listener = MonitorListener(feed, pool)
    scope = anyio.CancelScope()  # stopped as the supervisor stops a part

    async def run() -> None:
        with scope:
            await listener.run()

    task = asyncio.create_task(run())
    await feed.ready.wait()
    yield feed
    scope.cancel()
    await task


def fields(name: str, **changes: object) -> MonitorFields:
    return MonitorFields(**{"name": name, "target": f"http://127.0.0.1:9/{name}", **changes})


async def changed(subscription, ids: set[int]) -> set[int]:
    """What the feed announced, once it announced at least ``ids`` (within a second: the promise)."""
    taken: set[int] = set()
    with anyio.fail_after(1.0):
        while not ids <= taken:
            await subscription.wait(1.0)
            taken |= subscription.take()
    return taken


async def test_a_created_edited_paused_or_deleted_monitor_is_known_within_a_second(
    pool: asyncpg.Pool, owner: int, feed: MonitorFeed
) -> None:
    watching = feed.subscribe()
    a = await monitors.create(pool, owner, fields("a"))
    b = await monitors.create(pool, owner, fields("b"))
    assert await changed(watching, {a.id, b.id}) == {a.id, b.id}
    first_a = feed.entries[a.id]

    started = time.monotonic()
    await monitors.update_owned(pool, owner, b.id, fields("b", target="http://127.0.0.1:9/moved"))
    assert await changed(watching, {b.id}) == {b.id}
    assert time.monotonic() - started < 1.0
    assert feed.get(b.id).target == "http://127.0.0.1:9/moved"  # type: ignore[union-attr]
    assert feed.entries[a.id] is first_a  # untouched: the same object and encoding

    await monitors.toggle_owned(pool, owner, a.id)
    assert await changed(watching, {a.id}) == {a.id}
    assert feed.get(a.id).enabled is False  # type: ignore[union-attr]

    await monitors.delete_owned(pool, owner, b.id)
    assert await changed(watching, {b.id}) == {b.id}
    assert feed.get(b.id) is None and set(feed.entries) == {a.id}


async def test_an_options_change_alone_makes_a_new_monitor(pool: asyncpg.Pool, owner: int, feed: MonitorFeed) -> None:
    watching = feed.subscribe()
    m = await monitors.create(pool, owner, fields("api", http=HttpOptions(json_path="ok", json_equals=1)))
    await changed(watching, {m.id})
    before = feed.entries[m.id]
    assert before.monitor.http.json_equals == 1

    # Not even updated_at changes, and decoded {"json_equals": 1} == {"json_equals": true} in Python.
    await pool.execute(
        """UPDATE monitors SET options = '{"http": {"json_path": "ok", "json_equals": true}}' WHERE id = $1""", m.id
    )
    await changed(watching, {m.id})
    after = feed.entries[m.id]
    assert after is not before and after.monitor.http.json_equals is True and after.version != before.version


async def test_monitors_share_equal_http_options_and_a_job_carries_only_what_is_not_a_default(
    pool: asyncpg.Pool, owner: int, feed: MonitorFeed
) -> None:
    watching = feed.subscribe()
    plain = [await monitors.create(pool, owner, fields(f"m{n}")) for n in range(3)]
    api = await monitors.create(pool, owner, fields("api", http=HttpOptions(method="HEAD", accepted_statuses=["204"])))
    other_kinds = [
        await monitors.create(pool, owner, MonitorFields(name="db", kind="tcp", target="127.0.0.1:5432")),
        await monitors.create(
            pool,
            owner,
            MonitorFields.model_validate(
                {"name": "mx", "kind": "dns", "target": "example.com", "dns": {"record": "MX"}}
            ),
        ),
    ]
    await changed(watching, {m.id for m in [*plain, api, *other_kinds]})
    entries = [feed.entries[m.id] for m in [*plain, api, *other_kinds]]

    # One copy of the default options (about 1.5 KiB a monitor otherwise), another for the API's own.
    assert len({id(entry.monitor.http) for entry in entries}) == 2
    assert '"record":"MX"' in entries[5].json
    # A probe job (its JSON) leaves the defaults out; a worker in another process validates them back.
    assert '"http"' not in entries[0].json and '"interval"' not in entries[0].json
    assert '"method":"HEAD"' in entries[3].json
    for entry in entries:
        assert Monitor.model_validate_json(entry.json) == entry.monitor


async def test_a_bulk_change_is_read_in_one_go(pool: asyncpg.Pool, owner: int, feed: MonitorFeed) -> None:
    watching = feed.subscribe()
    await pool.execute(
        "INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s) "
        "SELECT $1, 'm' || n, 'http://127.0.0.1:9/', 60, 10 FROM generate_series(1, 2000) n",
        owner,
    )

    async def all_known() -> bool:
        return len(feed.entries) == 2000

    await eventually(all_known, timeout=5)
    assert len(watching.take()) == 2000


async def test_a_lost_connection_ends_the_part_and_the_next_run_reads_everything_again(
    pool: asyncpg.Pool, owner: int
) -> None:
    feed = MonitorFeed()
    listener = MonitorListener(feed, pool)
    a = await monitors.create(pool, owner, fields("a"))

    async def kill_the_listening_connection() -> None:
        await feed.ready.wait()
        assert set(feed.entries) == {a.id}
        # As a PostgreSQL restart or a proxy's idle timeout would: every other connection to this database.
        async with pool.acquire() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    killer = asyncio.create_task(kill_the_listening_connection())
    with pytest.raises(ConnectionError):
        await listener.run()
    await killer
    b = await monitors.create(pool, owner, fields("b"))  # a change nobody was listening for
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.run)

        async def caught_up() -> bool:
            return set(feed.entries) == {a.id, b.id}

        await eventually(caught_up, timeout=5)
        tg.cancel_scope.cancel()


def test_a_copy_with_changes_leaves_the_monitors_it_shares_with_alone() -> None:
    """Monitors share their options and their record of given fields: a copy must not change the others'."""
    made = [
        Monitor.model_validate({"id": n, "owner_id": 1, "name": f"m{n}", "target": "http://127.0.0.1:9/"})
        for n in (1, 2)
    ]
    assert made[0].model_fields_set is made[1].model_fields_set and made[0].http is made[1].http
    edited = made[0].model_copy(update={"http": HttpOptions(method="HEAD"), "tags": ["edge"]})
    assert edited.http.method == "HEAD" and "tags" in edited.model_fields_set
    assert made[1].http.method == "GET" and "tags" not in made[1].model_fields_set
    with pytest.raises(ValidationError):
        made[1].http.method = "POST"  # type: ignore[misc]  # frozen: nothing shared can change in place
