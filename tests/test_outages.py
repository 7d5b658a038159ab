"""PostgreSQL, Redis and Kafka restarted under a running daemon: it says so briefly, then works again.

Each test stops one of this checkout's own services (scripts/services, the
ports of this test session) and starts it again before it ends, waiting
until the service is usable, so the tests after it find it as it was.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from tests.support import SERVICES, Stack, Target, eventually
from tests.test_monitoring import monitor


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = await Target().start()
    yield server
    await server.stop()


async def services(command: str, name: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVICES), command, name, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


@asynccontextmanager
async def outage(name: str) -> AsyncIterator[None]:
    """``name`` (postgres, redis, kafka) is down inside the block, and up and usable after it, whatever happens."""
    await services("down", name)
    try:
        yield
    finally:
        await services("up", name)


async def stored_checks(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM checks")
    finally:
        await conn.close()


async def test_broker_down_30_s_is_a_handful_of_lines(topics: Stack, target: Target, start_daemon) -> None:
    stack = topics
    sections = stack.toml(monitor(target.url()))
    daemon = await start_daemon(sections.replace('level = "debug"', 'level = "info"'))
    await eventually(lambda: stored_checks(stack.dsn), timeout=30)
    before = len(daemon.lines)
    async with outage("kafka"):
        await asyncio.sleep(30)  # the outage under test
    stored = await stored_checks(stack.dsn)
    await eventually(lambda: _more(stack.dsn, stored), timeout=60)
    await asyncio.sleep(5)
    lines = daemon.lines[before:]
    loud = [line for line in lines if line.get("level") in ("warning", "error", "critical")]
    print("LINES", len(lines), "LOUD", len(loud))
    from collections import Counter
    print(Counter((l.get("event") or "")[:60] for l in loud).most_common(20))
    assert len(loud) <= 6


async def _more(dsn: str, than: int) -> bool:
    return await stored_checks(dsn) > than
