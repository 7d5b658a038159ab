"""Test doubles that are real: an HTTP target to probe, a Kafka reader of events."""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services"


@cache
def services_script() -> ModuleType:
    """scripts/services as a module (its file has no .py suffix), for its rules about Kafka versions."""
    loader = importlib.machinery.SourceFileLoader("uptimed_scripts_services", str(SERVICES))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # its dataclasses look their module up there
    loader.exec_module(module)
    return module


def kafka_version() -> str:
    """The broker release this session runs on: ``UPTIMED_KAFKA_VERSION``, else scripts/kafka/versions' default."""
    return services_script().kafka_version()


@dataclass
class Hit:
    path: str
    region: str | None
    status: int


@dataclass
class Target:
    """A local HTTP server whose answer is set per path and per probing region."""

    status: int = 200
    by_region: dict[str, int] = field(default_factory=dict)
    by_path: dict[str, int] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> Target:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        region = request.headers.get("X-Uptimed-Region")
        status = self.by_region.get(region or "", self.by_path.get(request.path, self.status))
        async with self._changed:
            self.hits.append(Hit(request.path, region, status))
            self._changed.notify_all()
        return web.Response(status=status, text="ok" if status < 400 else "broken")

    def count(self, *, path: str | None = None, region: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for h in self.hits
            if (path is None or h.path == path)
            and (region is None or h.region == region)
            and (status is None or h.status == status)
        )

    def per_path(self) -> Counter[str]:
        return Counter(h.path for h in self.hits)

    async def wait_hits(self, more: int, *, timeout: float = 30.0, **where: Any) -> None:
        """Wait until ``more`` further requests matching ``where`` have arrived."""
        goal = self.count(**where) + more
        await self.wait_until(lambda: self.count(**where) >= goal, timeout=timeout)

    async def wait_until(self, condition: Callable[[], bool], *, timeout: float = 30.0) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"target: condition not met within {timeout} s ({len(self.hits)} hits)") from None


class EventReader:
    """An independent consumer of a topic, from its beginning."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"test-reader-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.events: list[dict[str, Any]] = []
        self.records: list[Any] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> EventReader:
        await self.consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for record in self.consumer:
            async with self._changed:
                self.records.append(record)
                try:
                    self.events.append(json.loads(record.value))
                except ValueError:
                    self.events.append({"_raw": record.value})
                self._changed.notify_all()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()

    async def wait_records(self, count: int, *, timeout: float = 30.0) -> list[Any]:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.records) >= count)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"expected {count} records within {timeout} s, got {len(self.records)}") from None
        return self.records

    def of(self, type_: str, *, reminder: bool | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.events if e.get("type") == type_ and (reminder is None or e.get("reminder") == reminder)
        ]

    async def wait_for(
        self, type_: str, *, count: int = 1, reminder: bool | None = None, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.of(type_, reminder=reminder)) >= count)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} {type_} (reminder={reminder}) within {timeout} s, got {self.events}"
            ) from None
        return self.of(type_, reminder=reminder)


LOOPBACK = ["127.0.0.0/8", "::1/128"]
"""What the test stack's ``[security] allow_networks`` opens: the tests' own targets and receivers."""


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
                "bootstrap_servers": self.bootstrap.split(","),
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
            # Every test target and receiver listens on loopback; tests of the target policy take this out.
            "security": {"allow_networks": LOOPBACK},
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


class DaemonProcess:
    """``uptimed run`` as a real subprocess, its JSON log lines collected as they arrive."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.config = config
        self.env = env or {}
        self.args = args
        self.process: Any = None
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._changed: Any = None
        self._reader: Any = None

    async def start(self) -> DaemonProcess:
        import asyncio

        env = {k: v for k, v in os.environ.items() if not k.startswith("UPTIMED_")}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uptimed",
            "run",
            "-c",
            str(self.config),
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**env, **self.env},
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
            return [line for line in self.events(name) if all(line.get(k) == v for k, v in fields.items())]

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


@dataclass
class KafkaCluster:
    """A KRaft cluster of three combined broker + controller nodes that scripts/services started on its own ports.

    For fault tests: ``await cluster.kill(2)`` (kill -9), ``await cluster.start(2)``,
    ``await cluster.leader_of(topic, 0)``. The commands run as subprocesses the
    event loop awaits, so a test's own servers keep answering meanwhile.
    """

    env: dict[str, str]
    """The scripts/services variables that name this cluster (its size and ports)."""
    bootstrap: str
    """All brokers, comma-separated."""
    node_ids: tuple[int, ...] = (1, 2, 3)

    async def services(self, *args: str, check: bool = True) -> tuple[int, str]:
        """Run ``scripts/services ARGS`` for this cluster: its exit code and output (stdout, then stderr)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SERVICES),
            *args,
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        if check and process.returncode != 0:
            raise AssertionError(
                f"scripts/services {' '.join(args)} exited {process.returncode}: {err.decode()}{out.decode()}"
            )
        return process.returncode, out.decode() + err.decode()

    async def kill(self, node_id: int) -> None:
        """kill -9 that node's process: its broker and its controller crash at once."""
        await self.services("down", "kafka", "--node", str(node_id), "--kill")

    async def stop(self, node_id: int) -> None:
        """Stop that node cleanly (a controlled shutdown moves its leaderships first)."""
        await self.services("down", "kafka", "--node", str(node_id))

    async def start(self, node_id: int) -> None:
        """Start that node again; returns once the cluster's metadata lists it."""
        await self.services("up", "kafka", "--node", str(node_id))

    async def partitions(self, topic: str, *, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The topic's partitions as the cluster's metadata has them now (leader, replicas, in-sync replicas).

        A topic just created may be unknown to the broker asked for a moment
        (its metadata reaches the brokers after the controller), and the broker
        asked may be one a test killed: both are asked again.
        """
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError

        async def described() -> dict[str, Any] | None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            try:
                await admin.start()
                [found] = await admin.describe_topics([topic])
            except KafkaError:  # asked a node that a fault test killed: ask again
                return None
            finally:
                await admin.close()
            return None if found["error_code"] else found

        found = await eventually(described, timeout=timeout, interval=0.2)
        return sorted(found["partitions"], key=lambda p: p["partition"])

    async def leader_of(self, topic: str, partition: int = 0) -> int:
        """The node id of the broker that leads that partition now (-1 while it has no leader)."""
        for found in await self.partitions(topic):
            if found["partition"] == partition:
                return found["leader"]
        raise AssertionError(f"{topic} has no partition {partition}")

    async def wait_in_sync(self, topic: str, *, timeout: float = 60.0) -> None:
        """Wait until every partition of ``topic`` has a leader and all its replicas in sync (after a restart)."""

        async def settled() -> bool:
            return all(
                p["leader"] >= 0 and sorted(p["isr"]) == sorted(p["replicas"]) for p in await self.partitions(topic)
            )

        await eventually(settled, timeout=timeout, interval=0.5)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    """Loop time of arrival."""

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """A local HTTP endpoint per path, each answering from its own script of statuses.

    ``delay()`` is how long each answer takes (seconds); the first request to a
    path in ``hold`` is never answered (its sender is meant to die meanwhile).
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.scripts: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.delay: Callable[[], float] = lambda: 0.0
        self.hold: set[str] = set()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *replies: int | tuple[int, dict[str, str]]) -> None:
        """Answer the next requests to ``path`` with these statuses (then 200)."""
        self.scripts[path] = [r if isinstance(r, tuple) else (r, {}) for r in replies]

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)  # a held request ends at stop
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        script = self.scripts.get(request.path) or []
        status, headers = script.pop(0) if script else (200, {})
        async with self._changed:
            self.requests.append(Request(request.path, dict(request.headers), body, asyncio.get_running_loop().time()))
            self._changed.notify_all()
        if request.path in self.hold and len(self.to(request.path)) == 1:
            await asyncio.sleep(3600)
        if delay := self.delay():
            await asyncio.sleep(delay)
        return web.Response(status=status, text="ok" if status < 300 else "nope", headers=headers)

    async def wait_for(self, path: str | None, count: int = 1, *, timeout: float = 30.0) -> list[Request]:
        """The requests to ``path`` (None: to any path) once there are ``count``."""

        def arrived() -> list[Request]:
            return self.requests if path is None else self.to(path)

        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(arrived()) >= count)

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{path}: {len(arrived())} of {count} requests within {timeout} s") from None
        return arrived()


async def eventually(probe: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``probe`` (a coroutine function) until it returns something truthy, or fail at the deadline.

    For state that lives in PostgreSQL, which offers no event to await here.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        await asyncio.sleep(interval)


async def add_monitor(pool: Any, *, username: str = "owner", name: str = "m") -> tuple[int, int]:
    """A user and an http monitor of theirs (60 s), straight into the database: (user id, monitor id)."""
    owner = await pool.fetchval(
        "INSERT INTO users (username, email) VALUES ($1, $1 || '@example.com') RETURNING id", username
    )
    monitor = await pool.fetchval(
        "INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s) "
        "VALUES ($1, $2, 'https://m.example/', 60, 10) RETURNING id",
        owner,
        name,
    )
    return owner, monitor


def pid_listening_on(port: int) -> int:
    """The pid of the process listening on 127.0.0.1:``port`` (from /proc, no tools needed)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"nothing listens on port {port}")


async def drop_topics(bootstrap: str, prefix: str) -> None:
    """Delete one test's topics (``<prefix>.*``) once it is done with them.

    A broker holding every topic the session ever made grows slow to restart
    after a kill (it recovers each log) and heavy for its small heap.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(15):
            await admin.start()
            mine = [name for name in await admin.list_topics() if name.startswith(f"{prefix}.")]
            if mine:
                await admin.delete_topics(mine)
    except (TimeoutError, KafkaError):
        pass  # a broker a test left down (or a cluster test's): the topics stay, nothing else depends on it
    finally:
        await admin.close()


class Broker:
    """The session's single Kafka broker, killed and brought back by a test."""

    def __init__(self, bootstrap: str) -> None:
        self.port = int(bootstrap.rsplit(":", 1)[1])

    def kill(self) -> None:
        pid = pid_listening_on(self.port)
        os.kill(pid, signal.SIGKILL)
        while os.path.exists(f"/proc/{pid}") and not _zombie(pid):
            time.sleep(0.01)

    async def start(self) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(SERVICES), "up", "kafka", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except OSError:
        return True


PLUGINS = ROOT / "plugins"


def _installed_copy_is_current(module: str, source: Path) -> bool:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return False
    installed = Path(spec.origin).parent
    return all(
        (installed / path.name).is_file() and (installed / path.name).read_bytes() == path.read_bytes()
        for path in source.glob("*.py")
    )


def install_plugins(packages: dict[str, str]) -> None:
    """pip-install each ``plugins/<package>`` (its top module named) unless its current code is installed.

    Installed as real distributions, so their entry points are found like any
    plugin's; the registries of this process forget what they found before.
    """
    import importlib

    stale = [
        PLUGINS / package
        for package, module in packages.items()
        if not _installed_copy_is_current(module, PLUGINS / package / module)
    ]
    if stale:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall", "-q", *map(str, stale)],
            check=True,
        )
        importlib.invalidate_caches()
        for name in list(sys.modules):
            if name.split(".")[0] in packages.values():
                sys.modules.pop(name, None)
    from uptimed.channels.registry import default_registry
    from uptimed.probe.kinds import default_kinds

    default_registry.cache_clear()
    default_kinds.cache_clear()
