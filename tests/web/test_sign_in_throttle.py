"""The sign-in throttle stays bounded whatever is thrown at it, and locks a guesser, not the user.

A spray of failed sign-ins with 60 KB usernames adds nothing to the throttle,
logs nothing, and leaves the daemon's memory where it was; a spray over
thousands of well-formed usernames is capped per address; distributed
guessing of one password is capped per username; two processes of a cluster
count the same failures.
"""

from __future__ import annotations

import gc
import re
import tracemalloc

import asyncpg
from structlog.testing import capture_logs

from tests.web.fixtures import PASSWORD, Site, app_for
from uptimed.config import DatabaseSettings
from uptimed.store import sign_in_failures
from uptimed.store.database import connect
from uptimed.web import auth
from uptimed.web.auth import SignInThrottle

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def counted(pool: asyncpg.Pool) -> dict[str, int]:
    """How many failures each scope holds in the database."""
    return {
        r["scope"]: r["n"] for r in await pool.fetch("SELECT scope, count(*) AS n FROM sign_in_failures GROUP BY 1")
    }


def token_of(page: str) -> str:
    found = _TOKEN.search(page)
    assert found, "no sign-in form on the page"
    return found[1]


async def test_a_spray_of_60kb_usernames_keeps_memory_and_log_bounded(site: Site) -> None:
    await site.person("alice")
    client = site.client("198.51.100.9")
    token = token_of((await client.get("/login")).text)

    async def spray(count: int, offset: int) -> None:
        nonlocal token
        for n in range(count):
            username = f"{n + offset:05d}" + "x" * 60_000
            answer = await client.post(
                "/login", data={"csrf_token": token, "username": username, "password": "guess", "next": "/"}
            )
            assert answer.status_code == 401 and "Wrong username or password." in answer.text
            assert "xxxxxxxxxx" not in answer.text  # not shown back either
            token = token_of(answer.text)  # each answer is a new form with a new token, as in a browser

    await spray(20, 0)  # warm up: first-use allocations of the code paths are not the spray's
    # What the test's own client keeps (requests, cookies) and the captured log records are not the server's.
    harness = [
        tracemalloc.Filter(False, pattern) for pattern in ("*/httpx/*", "*/cookiejar.py", "*/structlog/testing.py")
    ]
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.take_snapshot().filter_traces(harness)
        await spray(400, 100)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(harness)
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    with capture_logs() as logged:  # another 400, to see every line they log
        await spray(400, 1000)
    assert await counted(site.pool) == {}  # nobody's name: nothing stored either
    sign_in_lines = [entry for entry in logged if entry["event"].startswith("web.sign_in")]
    assert sign_in_lines == []
    assert sum(len(repr(entry)) for entry in logged) < 400 * 200  # an access line a request at most
    # Before: +25 MiB for these 400. Now what stays is log-output noise, less than two of the usernames.
    assert grown < 2 * 60_000, f"the spray kept {grown} bytes"
    print(f"\n400 sign-ins with 60 KB usernames: memory +{grown} B, {len(logged)} log records")


async def test_a_spray_over_many_usernames_from_one_address_is_capped(site: Site) -> None:
    client = site.client("198.51.100.10")
    token = token_of((await client.get("/login")).text)
    statuses = []
    tries = auth.MAX_FAILURES_PER_ADDRESS + 30
    with capture_logs() as logged:
        for n in range(tries):
            answer = await client.post(
                "/login", data={"csrf_token": token, "username": f"user{n}", "password": "guess", "next": "/"}
            )
            statuses.append(answer.status_code)
            token = token_of(answer.text)
    assert statuses == [401] * auth.MAX_FAILURES_PER_ADDRESS + [429] * (tries - auth.MAX_FAILURES_PER_ADDRESS)
    capped = auth.MAX_FAILURES_PER_ADDRESS
    assert await counted(site.pool) == {"pair": capped, "username": capped, "address": capped}  # refused: not counted
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == ["web.sign_in_locked"]  # once, not 30 times


async def test_guessing_one_password_from_many_addresses_is_capped_per_username(site: Site) -> None:
    await site.person("alice")
    # The cap is auth.MAX_FAILURES_PER_USERNAME (100); 15 here keeps the test quick, the counting is the same.
    site.app.state.sign_in_throttle = SignInThrottle(per_username=15)
    for n in range(15):
        assert (await site.sign_in(site.client(f"10.0.{n // 200}.{n % 200}"), "alice", "guess")).status_code == 401
    assert (await site.sign_in(site.client("203.0.113.77"), "alice", PASSWORD)).status_code == 429


async def test_two_processes_count_the_same_failures(site: Site) -> None:
    await site.person("alice")
    # A second process of the cluster: its own app and pool, the same database.
    other_pool = await connect(DatabaseSettings(dsn=site.settings.database.dsn))
    try:
        other = app_for(other_pool, site.settings, site.http)
        second = Site(app=other, pool=other_pool, settings=site.settings, http=site.http)
        half = auth.MAX_FAILURES // 2
        for n in range(auth.MAX_FAILURES):
            via = site if n < half else second
            assert (await via.sign_in(via.client("203.0.113.5"), "alice", "guess")).status_code == 401
        # Ten failures, five through each process: both refuse the pair now, even the right password.
        assert (await second.sign_in(second.client("203.0.113.5"), "alice", PASSWORD)).status_code == 429
        assert (await site.sign_in(site.client("203.0.113.5"), "alice", PASSWORD)).status_code == 429
        assert (await site.sign_in(site.client("203.0.113.6"), "alice", PASSWORD)).status_code == 303  # not alice
        for client in second.clients:
            await client.aclose()
    finally:
        await other_pool.close()


async def test_failures_older_than_the_window_neither_lock_nor_stay(pool: asyncpg.Pool) -> None:
    throttle = SignInThrottle(per_pair=3, per_username=100, per_address=100, window_s=600.0)
    pair = sign_in_failures.key_hash("alice 192.0.2.1")

    async def backdate(seconds: float, times: int) -> None:
        await pool.execute(
            "INSERT INTO sign_in_failures (scope, key_hash, at) "
            "SELECT 'pair', $1, now() - make_interval(secs => $2) FROM generate_series(1, $3)",
            pair, seconds, times,
        )  # fmt: skip

    await backdate(700.0, 3)  # three failures 11 minutes ago: the window passed
    assert await throttle.locked_for(pool, "alice", "192.0.2.1") is None
    await throttle.fail(pool, "bob", "192.0.2.9")  # any new failure clears out the old ones
    assert await counted(pool) == {"pair": 1, "username": 1, "address": 1}

    await backdate(540.0, 3)  # three failures 9 minutes ago: locked for the minute left
    wait = await throttle.locked_for(pool, "alice", "192.0.2.1")
    assert wait is not None and 55 < wait <= 60
    await throttle.succeed(pool, "alice", "192.0.2.1")  # a right password clears its pair
    assert await throttle.locked_for(pool, "alice", "192.0.2.1") is None
