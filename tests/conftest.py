"""Real services for the tests: started once per session by scripts/services.

Each test gets a clean state of its own: a fresh database cloned from a
migrated template, Kafka topics and consumer groups with a unique prefix, and
a unique Redis key prefix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services"


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """Start PostgreSQL, Redis and Kafka (idempotent) and return the UPTIMED_* variables."""
    subprocess.run([sys.executable, str(SERVICES), "up"], check=True)
    out = subprocess.run(
        [sys.executable, str(SERVICES), "env", "--json"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def _with_database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
async def template_database(services: dict[str, str]) -> AsyncIterator[str]:
    """A database with the schema applied once; each test clones it."""
    from uptimed.store.database import connect, migrate
    from uptimed.config import DatabaseSettings

    admin_dsn = services["UPTIMED_DATABASE__DSN"]
    name = f"uptimed_template_{os.getpid()}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.execute(f"CREATE DATABASE {name}")
    pool = await connect(DatabaseSettings(dsn=_with_database(admin_dsn, name)))
    await migrate(pool)
    await pool.close()
    yield name
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.close()


@pytest.fixture
async def database(services: dict[str, str], template_database: str) -> AsyncIterator[str]:
    """The DSN of a fresh, migrated database for this test alone."""
    admin_dsn = services["UPTIMED_DATABASE__DSN"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    try:
        yield _with_database(admin_dsn, name)
    finally:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.close()


@dataclass
class Stack:
    """Where this test's uptimed finds its services, and the names that are its own."""

    dsn: str
    redis_url: str
    bootstrap: str
    prefix: str
    regions: list[str] = field(default_factory=lambda: ["default"])

    def sections(self) -> dict[str, dict[str, Any]]:
        p = self.prefix
        return {
            "database": {"dsn": self.dsn},
            "redis": {"url": self.redis_url, "key_prefix": f"{p}:"},
            "kafka": {
                "bootstrap_servers": [self.bootstrap],
                "partitions": 3,
                "evaluator_group": f"{p}.evaluator",
                "notification_group": f"{p}.notification-group",
                "request_timeout": 15,
                "topics": {
                    "checks": f"{p}.checks",
                    "events": f"{p}.website.events",
                    "dead_letters": f"{p}.dead-letters",
                },
            },
            "probe": {"regions": self.regions},
            "api": {"enabled": False},
            "log": {"format": "json", "level": "debug"},
        }

    def settings(self, **overrides: Any):
        from uptimed.config import Settings

        data = self.sections()
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return Settings(**data)

    def toml(self, extra: str = "") -> str:
        return to_toml(self.sections()) + "\n" + extra


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    """Enough TOML for test configs: tables of scalars, lists and one level of sub-tables."""
    lines: list[str] = []

    def emit(table: str, values: dict[str, Any]) -> None:
        lines.append(f"[{table}]")
        subtables = {k: v for k, v in values.items() if isinstance(v, dict)}
        for key, value in values.items():
            if not isinstance(value, dict):
                lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
        for key, value in subtables.items():
            emit(f"{table}.{key}", value)

    for table, values in sections.items():
        emit(table, values)
    return "\n".join(lines)


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


class DaemonProcess:
    """``uptimed run`` as a real subprocess, its JSON log lines collected as they arrive."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = env or {}
        self.process: Any = None
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._changed: Any = None
        self._reader: Any = None

    async def start(self) -> DaemonProcess:
        import asyncio

        env = {k: v for k, v in os.environ.items() if not k.startswith("UPTIMED_")}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uptimed", "run", "-c", str(self.config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**env, **self.env},
        )
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            text = raw.decode(errors="replace").rstrip("\n")
            self.raw.append(text)
            try:
                line = json.loads(text)
            except ValueError:
                line = {"event": "<raw>", "text": text}
            async with self._changed:
                self.lines.append(line if isinstance(line, dict) else {"event": "<raw>", "text": text})
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    async def wait_for(self, name: str, *, count: int = 1, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """The ``count``-th log line with event ``name`` (and these fields), awaited with a deadline."""
        import asyncio

        def match() -> list[dict[str, Any]]:
            return [
                line for line in self.events(name) if all(line.get(k) == v for k, v in fields.items())
            ]

        async def condition() -> dict[str, Any]:
            async with self._changed:
                while len(match()) < count:
                    if self._reader.done():
                        raise AssertionError(f"uptimed exited before logging {name!r}:\n" + "\n".join(self.raw[-30:]))
                    await self._changed.wait()
                return match()[count - 1]

        try:
            return await asyncio.wait_for(condition(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {name!r} within {timeout} s; last lines:\n" + "\n".join(self.raw[-30:])) from None

    async def stop(self, sig: int = 15, *, timeout: float = 30.0) -> int:
        import asyncio

        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        return code

    async def kill(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader:
            await self._reader


@pytest.fixture
async def daemons() -> AsyncIterator[list[DaemonProcess]]:
    """Daemon processes started by a test; any still running at its end are killed."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        await daemon.kill()


@pytest.fixture
def start_daemon(daemons: list[DaemonProcess], tmp_path: Path):
    """``await start_daemon(toml_text)`` -> a running :class:`DaemonProcess`."""
    counter = iter(range(1000))

    async def start(toml: str, *, env: dict[str, str] | None = None, wait_ready: bool = True) -> DaemonProcess:
        path = tmp_path / f"uptimed-{next(counter)}.toml"
        path.write_text(toml)
        daemon = await DaemonProcess(path, env=env).start()
        daemons.append(daemon)
        if wait_ready:
            await daemon.wait_for("daemon.ready")
        return daemon

    return start
