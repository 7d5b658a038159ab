"""Real services for the tests: started once per session by scripts/services.

Each test gets a clean state of its own: a fresh database cloned from a
migrated template, Kafka topics and consumer groups with a unique prefix, and
a unique Redis key prefix.

Tests that start ``uptimed run`` or use Kafka carry the marker ``kafka``: `make
test` runs them a second time on the oldest supported broker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support import SERVICES, DaemonProcess, KafkaCluster, Stack, drop_topics

KAFKA_FIXTURES = {"start_daemon", "daemons", "topics", "kafka_cluster"}
"""A test using one of these starts ``uptimed run`` or talks to Kafka: it is marked ``kafka`` by itself."""

CLUSTER_PORT_OFFSET = 20
"""The 3-broker cluster listens on UPTIMED_KAFKA_PORT + 20, 22, 24 (controllers + 21, 23, 25)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """Start PostgreSQL, Redis and Kafka (idempotent) and return the UPTIMED_* variables."""
    subprocess.run([sys.executable, str(SERVICES), "up"], check=True)
    out = subprocess.run(
        [sys.executable, str(SERVICES), "env", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="session")
def kafka_cluster(services: dict[str, str]) -> Iterator[KafkaCluster]:
    """A 3-broker KRaft cluster of the session's Kafka version, beside the single broker.

    Its own ports (from UPTIMED_KAFKA_PORT, see :data:`CLUSTER_PORT_OFFSET`) and
    data folder (``kafka/<version>-cluster``); stopped at the end of the session.
    """
    port = int(os.environ.get("UPTIMED_KAFKA_PORT", "29092")) + CLUSTER_PORT_OFFSET
    env = {
        "UPTIMED_KAFKA_BROKERS": "3",
        "UPTIMED_KAFKA_PORT": str(port),
        "UPTIMED_KAFKA_CONTROLLER_PORT": str(port + 1),
        "UPTIMED_KAFKA_PORTS": "",
        "UPTIMED_KAFKA_CONTROLLER_PORTS": "",
    }
    command = [sys.executable, str(SERVICES)]
    subprocess.run([*command, "up", "kafka"], env={**os.environ, **env}, check=True)
    try:
        out = subprocess.run(
            [*command, "env", "--json"], env={**os.environ, **env}, check=True, capture_output=True, text=True
        ).stdout
        yield KafkaCluster(env=env, bootstrap=json.loads(out)["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"])
    finally:
        subprocess.run([*command, "down", "kafka"], env={**os.environ, **env}, check=False)


def _with_database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
async def template_database(services: dict[str, str]) -> AsyncIterator[str]:
    """A database with the schema applied once; each test clones it."""
    from uptimed.config import DatabaseSettings
    from uptimed.store.database import connect, migrate

    admin_dsn = services["UPTIMED_DATABASE__DSN"]
    name = f"uptimed_template_{os.getpid()}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.execute(f"CREATE DATABASE {name}")
    pool = await connect(DatabaseSettings(dsn=_with_database(admin_dsn, name)))
    await migrate(pool)
    await pool.close()
    await conn.close()
    yield name
    # A new connection: a test may have restarted PostgreSQL (tests/test_outages.py) since.
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.close()


@pytest.fixture
async def database(services: dict[str, str], template_database: str) -> AsyncIterator[str]:
    """The DSN of a fresh, migrated database for this test alone."""
    admin_dsn = services["UPTIMED_DATABASE__DSN"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    await conn.close()
    try:
        yield _with_database(admin_dsn, name)
    finally:
        conn = await asyncpg.connect(admin_dsn)  # the test may have restarted PostgreSQL
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    """uptimed's own pool (JSON codecs and all) to this test's database."""
    from uptimed.config import DatabaseSettings
    from uptimed.store.database import connect

    pool = await connect(DatabaseSettings(dsn=database))
    yield pool
    await pool.close()


@pytest.fixture
def stack(services: dict[str, str], database: str) -> Stack:
    return Stack(
        dsn=database,
        redis_url=services["UPTIMED_REDIS__URL"],
        bootstrap=services["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"],
        prefix=f"t{uuid.uuid4().hex[:10]}",
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No UPTIMED_* variable from the caller's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("UPTIMED_"):
            monkeypatch.delenv(key)
    yield


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
async def daemons(request: pytest.FixtureRequest, stack: Stack) -> AsyncIterator[list[DaemonProcess]]:
    """Daemon processes started by a test; any still running at its end are killed, and their topics deleted.

    When the test failed, each daemon's whole log goes to test-artifacts/ (git-ignored) for CI to keep.
    """
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        await daemon.kill()
    if started:
        await drop_topics(stack.bootstrap, stack.prefix)
    report = getattr(request.node, "rep_call", None)
    if started and report is not None and report.failed:
        folder = Path(__file__).resolve().parent.parent / "test-artifacts" / request.node.name[:100]
        folder.mkdir(parents=True, exist_ok=True)
        for index, daemon in enumerate(started):
            (folder / f"uptimed-{index}.log").write_text("\n".join(daemon.raw) + "\n")


@pytest.fixture
def start_daemon(daemons: list[DaemonProcess], tmp_path: Path):
    """``await start_daemon(toml_text)`` -> a running :class:`DaemonProcess`."""
    counter = iter(range(1000))

    async def start(
        toml: str, *, env: dict[str, str] | None = None, wait_ready: bool = True, args: tuple[str, ...] = ()
    ) -> DaemonProcess:
        path = tmp_path / f"uptimed-{next(counter)}.toml"
        path.write_text(toml)
        daemon = await DaemonProcess(path, env=env, args=args).start()
        daemons.append(daemon)
        if wait_ready:
            await daemon.wait_for("daemon.ready")
        return daemon

    return start


@pytest.fixture
async def topics(stack: Stack) -> AsyncIterator[Stack]:
    """This test's topics, created up front (so readers can subscribe before uptimed starts), deleted after it."""
    from uptimed.bus.kafka import ensure_topics

    await ensure_topics(stack.settings().kafka)
    yield stack
    await drop_topics(stack.bootstrap, stack.prefix)


# The web pages' fixtures (site, alice, bob), for tests/web.
from tests.web.fixtures import alice, bob, site  # noqa: E402,F401
