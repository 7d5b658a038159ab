"""The sign-in throttle stays bounded whatever is thrown at it, and locks a guesser, not the user.

A spray of failed sign-ins with 60 KB usernames adds nothing to the throttle,
logs nothing, and leaves the daemon's memory where it was; a spray over
thousands of well-formed usernames is capped per address; distributed
guessing of one password is capped per username.
"""

from __future__ import annotations

import gc
import re
import tracemalloc

import pytest
from structlog.testing import capture_logs

from tests.web.fixtures import PASSWORD, Site
from uptimed.web import auth
from uptimed.web.auth import FailureCount, SignInThrottle

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


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
    throttle = auth.throttle_of_app(site.app)
    assert (len(throttle.pair), len(throttle.username), len(throttle.address)) == (0, 0, 0)
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
    throttle = auth.throttle_of_app(site.app)
    assert len(throttle.pair) == len(throttle.username) == auth.MAX_FAILURES_PER_ADDRESS
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == ["web.sign_in_locked"]  # once, not 30 times


async def test_guessing_one_password_from_many_addresses_is_capped_per_username(site: Site) -> None:
    await site.person("alice")
    # The cap is auth.MAX_FAILURES_PER_USERNAME (100); 15 here keeps the test quick, the counting is the same.
    site.app.state.sign_in_throttle = SignInThrottle(username=FailureCount(15))
    for n in range(15):
        assert (await site.sign_in(site.client(f"10.0.{n // 200}.{n % 200}"), "alice", "guess")).status_code == 401
    assert (await site.sign_in(site.client("203.0.113.77"), "alice", PASSWORD)).status_code == 429


def test_the_count_forgets_old_failures_and_keeps_at_most_max_keys() -> None:
    count = FailureCount(limit=3, window_s=10.0, max_keys=100)
    for n in range(1000):
        count.add(f"key{n}", now=float(n) / 100)
    assert len(count) == 100
    assert count.locked_for("key999", now=10.0) is None
    for _ in range(3):
        count.add("guesser", now=20.0)
    assert count.locked_for("guesser", now=25.0) == pytest.approx(5.0)
    assert count.locked_for("guesser", now=30.5) is None  # the window passed: forgotten
    count.add("late", now=100.0)
    assert len(count) == 1  # everything quiet for longer than the window went
