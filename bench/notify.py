"""Notification fan-out and end-to-end pipeline overhead, against the real services.

Two figures of TARGETS.md, each as the median of ``--repeat`` runs:

``fanout``: one user with ``--integrations`` webhook integrations; ``--events``
events are published at once onto ``website.events`` (spread over
``--monitors`` monitors, as when a shared dependency fails). The Notifier and
the Dispatcher record and deliver them. Prints notifications/s delivered and
logged (first publish -> the last row's ``sent_at``), CPU s per 1,000
notifications of the measured process, and p50/p99 of (webhook received -
event published). Target: >= 2,000 notifications/s.

``pipeline``: ``--monitors`` monitors with failure and success threshold 1 and
one webhook integration. Crafted check results go onto ``checks`` one every
``--spacing-ms`` (round robin over the monitors, alternating down / up, so
every result is a transition), through Evaluator -> ``website.events`` ->
Notifier -> Dispatcher -> webhook. Prints p50/p99 of (webhook received -
result produced), split into stages: produced -> evaluated (the event's
``timestamp``), evaluated -> intent stored (``notification_log.created_at``),
intent -> received. Target: p50 < 20 ms, p99 < 100 ms.

Three processes besides PostgreSQL and Kafka: this one (set-up, publishing,
polling, read-out), the webhook receiver (aiohttp on uvloop; it stamps each
request with ``time.time_ns()`` on arrival and hands its records over on
request) and the measured process (uvloop), which builds the parts exactly as
``uptimed.daemon`` does (same pool, producer, httpx client, registry,
settings defaults) and runs them as tasks. Every run gets a fresh database
and fresh topics and consumer groups, removed afterwards. The measured
process logs at ``--log-level`` (default info, as in production) as JSON
lines into a file.

    python bench/notify.py [--mode fanout|pipeline|both] [--repeat 3]
                           [--events 500] [--integrations 10] [--monitors 100]
                           [--transitions 300] [--spacing-ms 50]
                           [--log-level info] [--set notify.concurrency=400]
                           [--http daemon|keepalive|aiohttp] [--profile DIR]

``--set SECTION.KEY=VALUE`` (repeatable, value parsed as JSON when it can be)
overrides a setting of the measured process, to try a change. ``--http``
swaps the channels' httpx client for an experiment: ``keepalive`` keeps as
many idle connections as ``per_channel_concurrency`` (httpx keeps 20),
``aiohttp`` gives it a minimal aiohttp-backed transport. ``--profile
DIR`` records the measured process with py-spy over each measured window and
prints the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Self, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SERVICES = ROOT / "scripts" / "services"
REGION = "default"
PARTITIONS = 6
FANOUT_TARGET = 2000.0
P50_TARGET_MS = 20.0
P99_TARGET_MS = 100.0


# --- the webhook receiver (a child process) ---------------------------------------------------


def receive() -> None:
    """Answer every POST with 200 and keep (path, event id, arrival ns, body); GET /_take hands them over."""
    import uvloop
    from aiohttp import web

    records: list[tuple[str, str | None, int, bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        records.append((request.path, request.headers.get("X-Uptimed-Event-Id"), time.time_ns(), body))
        return web.Response(text="ok")

    async def take(_: web.Request) -> web.Response:
        taken = records[:]
        records.clear()
        out = []
        for path, event_id, at_ns, body in taken:
            try:
                evaluated_ms = json.loads(body)["data"]["timestamp"]
            except (ValueError, KeyError, TypeError):
                evaluated_ms = None
            out.append([path, event_id, at_ns, evaluated_ms])
        return web.json_response(out)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/_take", take)
        app.router.add_post("/{tail:.*}", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


# --- the measured process ---------------------------------------------------------------------


def cpu_s() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def measure(spec: dict[str, Any], log_file: TextIO) -> None:
    """Run Notifier + Dispatcher (+ Evaluator) as the daemon wires them; answer ``mark`` / ``stop`` on stdin."""
    import httpx

    from uptimed import __version__
    from uptimed.bus.kafka import make_producer
    from uptimed.channels.registry import default_registry
    from uptimed.config import Settings
    from uptimed.evaluate.evaluator import Evaluator
    from uptimed.log import configure
    from uptimed.notify.dispatcher import Dispatcher
    from uptimed.notify.notifier import Notifier
    from uptimed.store.database import connect

    settings = Settings(**spec["settings"])
    configure(settings.log, stream=log_file)
    pool = await connect(settings.database)
    producer = make_producer(settings.kafka)
    await producer.start()
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.notify.delivery_timeout),
        follow_redirects=False,
        headers={"User-Agent": f"uptimed/{__version__}"},
        **http_experiment(spec["http"], settings),
    )
    registry = default_registry()
    dispatcher = Dispatcher(pool=pool, registry=registry, settings=settings.notify, smtp=settings.smtp, http=http)
    notifier = Notifier(settings=settings, pool=pool, producer=producer, dispatcher=dispatcher)
    parts = {"notifier": asyncio.create_task(notifier.run()), "dispatcher": asyncio.create_task(dispatcher.run())}
    if spec["evaluator"]:
        from uptimed.store.monitor_feed import MonitorFeed, MonitorListener

        feed = MonitorFeed()
        evaluator = Evaluator(settings=settings, pool=pool, producer=producer, feed=feed)
        parts["monitors"] = asyncio.create_task(MonitorListener(feed, pool).run())
        parts["evaluator"] = asyncio.create_task(evaluator.run())

    def problem() -> str | None:
        for name, task in parts.items():
            if task.done():
                return f"{name} stopped: {task.exception()!r}" if not task.cancelled() else f"{name} cancelled"
        return None

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    emit(event="started", pid=os.getpid())
    try:
        while line := await reader.readline():
            if line.strip() == b"mark":
                user, system = cpu_s()
                emit(event="mark", user_s=user, system_s=system, problem=problem())
            elif line.strip() == b"stop":
                break
    finally:
        for task in parts.values():
            task.cancel()
        await asyncio.gather(*parts.values(), return_exceptions=True)
        await http.aclose()
        await producer.stop()
        await pool.close()


def http_experiment(kind: str, settings: Any) -> dict[str, Any]:
    """Extra options of the channels' httpx client: none as the daemon has it, or a change to try."""
    import httpx

    if kind == "daemon":
        return {}
    if kind == "keepalive":  # keep as many connections as may be in flight per channel (httpx keeps 20)
        n = settings.notify.per_channel_concurrency
        return {"limits": httpx.Limits(max_connections=max(100, n), max_keepalive_connections=n)}
    if kind == "aiohttp":
        return {"transport": AiohttpTransport()}
    raise ValueError(kind)


class AiohttpTransport:
    """A minimal httpx transport over one aiohttp session (an experiment: enough for these webhooks)."""

    def __init__(self) -> None:
        self.session: Any = None

    async def handle_async_request(self, request: Any) -> Any:
        import aiohttp
        import httpx

        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read"))
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in ("host", "content-length")]
        try:
            async with self.session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=await request.aread(),
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                content = await response.read()
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc), request=request) from exc
        except aiohttp.ClientConnectionError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        return httpx.Response(
            response.status,
            headers=[(k.decode(), v.decode()) for k, v in response.raw_headers],
            content=content,
            request=request,
        )

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Measured:
    """The orchestrator's handle on the measured process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, spec: dict[str, Any]) -> Measured:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--measure",
            json.dumps(spec),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self = cls(process)
        message = await self._read()
        assert message["event"] == "started", message
        return self

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"the measured process ended (exit {await self.process.wait()})")
        return json.loads(line)

    async def mark(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(b"mark\n")
        await self.process.stdin.drain()
        message = await self._read()
        if message["problem"]:
            raise RuntimeError(f"measured process: {message['problem']}")
        return message

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(b"stop\n")
            await self.process.stdin.drain()
            await asyncio.wait_for(self.process.wait(), 20)
        except (TimeoutError, ConnectionError):
            self.process.kill()
            await self.process.wait()


# --- the orchestrator -------------------------------------------------------------------------


def services_env() -> dict[str, str]:
    if subprocess.run([sys.executable, str(SERVICES), "status"], capture_output=True, check=False).returncode != 0:
        subprocess.run([sys.executable, str(SERVICES), "up"], check=True)
    out = subprocess.run([sys.executable, str(SERVICES), "env", "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def settings_sections(env: dict[str, str], dsn: str, prefix: str, args: argparse.Namespace) -> dict[str, Any]:
    sections: dict[str, Any] = {
        "database": {"dsn": dsn},
        "redis": {"url": env["UPTIMED_REDIS__URL"], "key_prefix": f"{prefix}:"},
        "kafka": {
            "bootstrap_servers": [env["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"]],
            "partitions": PARTITIONS,
            "retention": 3600,
            "evaluator_group": f"{prefix}.evaluator",
            "notification_group": f"{prefix}.notification-group",
            "topics": {"checks": f"{prefix}.checks", "events": f"{prefix}.events", "dead_letters": f"{prefix}.dlq"},
        },
        "probe": {"regions": [REGION]},
        "api": {"enabled": False},
        "log": {"level": args.log_level, "format": "json"},
    }
    for item in args.set:
        key, _, text = item.partition("=")
        section, _, name = key.partition(".")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        sections.setdefault(section, {})[name] = value
    return sections


def quantile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Receiver:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--receive"], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.records: list[tuple[str, str | None, int, int | None]] = []
        self.session: Any = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def take(self) -> int:
        """Move the receiver's new records here; returns how many arrived."""
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession()
        async with self.session.get(self.url("/_take")) as response:
            new = [tuple(r) for r in await response.json()]
        self.records += new  # type: ignore[arg-type]
        return len(new)

    async def wait_for(self, ids: set[str], *, timeout: float) -> None:
        """Until a request carrying each event id in ``ids`` has arrived (each at least once)."""
        deadline = time.monotonic() + timeout
        while True:
            await self.take()
            missing = ids - {r[1] for r in self.records}
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"receiver: {len(missing)} of {len(ids)} events never arrived within {timeout:g} s")
            await asyncio.sleep(0.05)

    def clear(self) -> None:
        self.records = []

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
        self.process.terminate()
        self.process.wait()


async def warmed_up(db: Any, expected: int, *, timeout: float = 90.0) -> None:
    """Until ``expected`` rows are SENT; fails at once when a delivery failed (the set-up is wrong)."""
    deadline = time.monotonic() + timeout
    while True:
        sent, error = await db.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'SENT'), max(error_message) FROM notification_log"
        )
        if error:
            raise RuntimeError(f"warm-up: a delivery failed: {error}")
        if sent >= expected:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"warm-up: {sent} of {expected} notifications sent within {timeout:g} s")
        await asyncio.sleep(0.05)


async def cleanup(env: dict[str, str], prefix: str) -> None:
    import asyncpg
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=env["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if mine:
            await admin.delete_topics(mine)
        # The run's consumer groups stay behind, empty (aiokafka's admin cannot delete groups).
    finally:
        await admin.close()
    conn = await asyncpg.connect(env["UPTIMED_DATABASE__DSN"])
    await conn.execute(f"DROP DATABASE IF EXISTS {prefix} WITH (FORCE)")
    await conn.close()


def start_profiler(directory: str, pid: int, name: str) -> subprocess.Popen:
    if not shutil.which("py-spy"):
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    Path(directory).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            "250",
            "--pid",
            str(pid),
            "--output",
            str(Path(directory) / name),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(30)
        except subprocess.TimeoutExpired:
            profiler.kill()


def summarise_profile(path: Path, top: int = 15) -> None:
    """Top functions by own and by total samples of a py-spy raw (collapsed) profile."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return
    print(f"  {path.name}: {samples} samples; own time:")
    for frame, count in own.most_common(top):
        print(f"    {count / samples:6.1%}  {frame}")
    print("  inclusive:")
    for frame, count in total.most_common(top + 10):
        print(f"    {count / samples:6.1%}  {frame}")


async def one_run(
    mode: str, args: argparse.Namespace, env: dict[str, str], receiver: Receiver, run: int
) -> dict[str, Any]:
    import asyncpg

    from uptimed.bus.kafka import ensure_topics, make_producer
    from uptimed.config import DatabaseSettings, Settings
    from uptimed.store import integrations
    from uptimed.store.database import connect, migrate

    prefix = f"bench_{uuid.uuid4().hex[:10]}"
    admin_dsn = env["UPTIMED_DATABASE__DSN"]
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + prefix
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"CREATE DATABASE {prefix}")
    await conn.close()
    measured: Measured | None = None
    producer = None
    db = None
    try:
        sections = settings_sections(env, dsn, prefix, args)
        settings = Settings(**sections)
        pool = await connect(DatabaseSettings(dsn=dsn))
        await migrate(pool)
        user = await pool.fetchval(
            "INSERT INTO users (username, email) VALUES ('bench', 'bench@example.com') RETURNING id"
        )
        monitor_ids = [
            r["id"]
            for r in await pool.fetch(
                """
                INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s, failure_threshold, success_threshold)
                SELECT $1, 'm' || i, 'https://m' || i || '.example/', 60, 10, 1, 1 FROM generate_series(1, $2) AS i
                RETURNING id
                """,
                user,
                args.monitors,
            )
        ]
        hooks = args.integrations if mode == "fanout" else 1
        for i in range(hooks):
            await integrations.create(
                pool, user, "webhook", {"webhookUrl": receiver.url(f"/{prefix}/{i}"), "headers": {}}
            )
        await pool.close()
        await ensure_topics(settings.kafka)
        producer = make_producer(settings.kafka)
        await producer.start()
        db = await asyncpg.connect(dsn)

        spec = {
            "settings": sections,
            "evaluator": mode == "pipeline",
            "http": args.http,
            "log_path": str(Path(args.log_dir) / f"{prefix}.log"),
        }
        measured = await Measured.start(spec)
        runner = run_fanout if mode == "fanout" else run_pipeline
        return await runner(
            args, settings, user, monitor_ids, hooks, producer, db, receiver, measured, f"{mode}-run{run + 1}"
        )
    finally:
        if measured:
            await measured.stop()
        if producer:
            await producer.stop()
        if db:
            await db.close()
        receiver.clear()
        await cleanup(env, prefix)


async def run_fanout(
    args, settings, user, monitor_ids, hooks, producer, db, receiver, measured, name
) -> dict[str, Any]:
    from uptimed.event import EventType, MonitorEvent

    topic = settings.kafka.topics.events

    def event(monitor: int) -> MonitorEvent:
        return MonitorEvent(
            type=EventType.DOWN,
            websiteId=monitor,
            userId=user,
            url=f"https://m{monitor}.example/",
            regionId=REGION,
            reason="status: HTTP 503",
            regions={REGION: "down"},
            name=f"m{monitor}",
            responseTime=12.5,
        )

    # Warm-up: the consumer group joins, connections open; one event to every integration.
    warm = event(monitor_ids[0])
    await producer.send_and_wait(topic, warm.model_dump_json().encode(), key=warm.key())
    await warmed_up(db, hooks)
    receiver.clear()
    await receiver.take()
    receiver.clear()
    base = await db.fetchval("SELECT count(*) FROM notification_log")

    events = [event(monitor_ids[i % len(monitor_ids)]) for i in range(args.events)]
    payloads = [(e.model_dump_json().encode(), e.key(), str(e.eventId)) for e in events]
    expected = args.events * hooks
    published_ns: dict[str, int] = {}
    profiler = start_profiler(args.profile, measured.process.pid, f"{name}.txt") if args.profile else None
    busy_0 = machine_busy()
    mark_0 = await measured.mark()
    t0_ns = time.time_ns()
    futures = []
    for value, key, event_id in payloads:
        published_ns[event_id] = time.time_ns()
        futures.append(await producer.send(topic, value, key=key))
    await asyncio.gather(*futures)
    deadline = time.monotonic() + args.timeout
    while True:
        sent, failed = await db.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'SENT'), count(*) FILTER (WHERE status = 'FAILED') FROM notification_log"
        )
        if sent + failed >= base + expected:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"fan-out: {sent - base} of {expected} sent within {args.timeout:g} s")
        await asyncio.sleep(args.poll_ms / 1000)
    t_polled_ns = time.time_ns()
    mark_1 = await measured.mark()
    busy_1 = machine_busy()
    stop_profiler(profiler)

    last_sent_ms = await db.fetchval(
        "SELECT extract(epoch FROM max(sent_at))::float8 * 1000 FROM notification_log WHERE event_id = ANY($1::uuid[])",
        list(published_ns),
    )
    rows = await db.fetch(
        "SELECT event_id::text, extract(epoch FROM created_at)::float8 * 1000 AS created_ms FROM notification_log "
        "WHERE event_id = ANY($1::uuid[])",
        list(published_ns),
    )
    created_ms = {r["event_id"]: r["created_ms"] for r in rows}
    await receiver.take()
    mine = [r for r in receiver.records if r[1] in published_ns]
    distinct = {(r[0], r[1]) for r in mine}
    seconds = (last_sent_ms - t0_ns / 1e6) / 1000
    latencies = [(at_ns - published_ns[eid]) / 1e6 for _, eid, at_ns, _ in mine]
    to_intent = [created_ms[eid] - published_ns[eid] / 1e6 for eid in published_ns if eid in created_ms]
    intent_to_recv = [at_ns / 1e6 - created_ms[eid] for _, eid, at_ns, _ in mine if eid in created_ms]
    cpu = (mark_1["user_s"] - mark_0["user_s"]) + (mark_1["system_s"] - mark_0["system_s"])
    window_s = (t_polled_ns - t0_ns) / 1e9
    out = {
        "per_s": expected / seconds,
        "seconds": seconds,
        "cpu_per_1000": cpu / expected * 1000,
        "cores": cpu / window_s,
        "machine": (busy_1[0] - busy_0[0]) / max(1, busy_1[1] - busy_0[1]),
        "p50_ms": quantile(latencies, 50),
        "p99_ms": quantile(latencies, 99),
        "to_intent_p50_ms": quantile(to_intent, 50),
        "intent_recv_p50_ms": quantile(intent_to_recv, 50),
        "failed": failed,
        "duplicates": len(mine) - len(distinct),
        "missing": expected - len(distinct),
    }
    print(
        f"  {name}: {expected:,} notifications ({args.events} events x {hooks}) in {seconds:.2f} s = "
        f"{out['per_s']:,.0f}/s; {out['cpu_per_1000']:.3f} CPU s/1000 ({out['cores']:.2f} cores, machine "
        f"{out['machine']:.0%} busy); published -> received p50 {out['p50_ms']:.0f} p99 {out['p99_ms']:.0f} ms "
        f"(-> intent p50 {out['to_intent_p50_ms']:.0f}, intent -> received p50 {out['intent_recv_p50_ms']:.0f}); "
        f"failed {failed}, missing {out['missing']}, duplicates {out['duplicates']}",
        flush=True,
    )
    return out


async def run_pipeline(
    args, settings, user, monitor_ids, hooks, producer, db, receiver, measured, name
) -> dict[str, Any]:
    from uptimed.check import CheckResult, CheckStatus, ErrorClass
    from uptimed.evaluate.events import EVENT_ID_NAMESPACE

    topic = settings.kafka.topics.checks
    status: dict[int, CheckStatus] = {}
    last_checked: dict[int, int] = {}

    def result(monitor: int) -> tuple[CheckResult, str]:
        """The next result of ``monitor``: the opposite of its last one (down first), and its event's id."""
        new = CheckStatus.UP if status.get(monitor) is CheckStatus.DOWN else CheckStatus.DOWN
        status[monitor] = new
        checked_at_ms = max(time.time_ns() // 1_000_000, last_checked.get(monitor, 0) + 1)
        last_checked[monitor] = checked_at_ms
        if new is CheckStatus.DOWN:
            check = CheckResult(
                monitor_id=monitor,
                region=REGION,
                status=new,
                response_time_ms=3.2,
                status_code=503,
                error_class=ErrorClass.STATUS,
                error="HTTP 503",
                checked_at_ms=checked_at_ms,
                scheduled_at_ms=checked_at_ms - 1,
            )
        else:
            check = CheckResult(
                monitor_id=monitor,
                region=REGION,
                status=new,
                response_time_ms=3.2,
                status_code=200,
                checked_at_ms=checked_at_ms,
                scheduled_at_ms=checked_at_ms - 1,
            )
        # As uptimed.evaluate.events.event_id_for derives it from the change.
        event_id = uuid.uuid5(EVENT_ID_NAMESPACE, f"{monitor}/{new.value}/{REGION}@{checked_at_ms}")
        return check, str(event_id)

    # Warm-up: groups join, connections open, every monitor goes down once (and is cached by the evaluator).
    warm_ids = set()
    for monitor in monitor_ids:
        check, event_id = result(monitor)
        warm_ids.add(event_id)
        await producer.send(topic, check.model_dump_json().encode(), key=check.key())
    await producer.flush()
    await warmed_up(db, len(warm_ids))
    await receiver.wait_for(warm_ids, timeout=30)
    await asyncio.sleep(1.0)
    await receiver.take()
    receiver.clear()

    produced_ns: dict[str, int] = {}
    spacing_s = args.spacing_ms / 1000
    profiler = start_profiler(args.profile, measured.process.pid, f"{name}.txt") if args.profile else None
    busy_0 = machine_busy()
    mark_0 = await measured.mark()
    t0 = time.monotonic()
    for i in range(args.transitions):
        # Jittered, on a fixed schedule, so the rate does not drift with the loop's own delays.
        delay = t0 + i * spacing_s + random.uniform(0, spacing_s / 2) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        check, event_id = result(monitor_ids[i % len(monitor_ids)])
        produced_ns[event_id] = time.time_ns()
        await producer.send(topic, check.model_dump_json().encode(), key=check.key())
    await receiver.wait_for(set(produced_ns), timeout=args.timeout)
    mark_1 = await measured.mark()
    busy_1 = machine_busy()
    window_s = time.monotonic() - t0
    stop_profiler(profiler)

    rows = await db.fetch(
        "SELECT event_id::text, extract(epoch FROM created_at)::float8 * 1000 AS created_ms FROM notification_log "
        "WHERE event_id = ANY($1::uuid[])",
        list(produced_ns),
    )
    created_ms = {r["event_id"]: r["created_ms"] for r in rows}
    first: dict[str, tuple[int, int | None]] = {}
    for _, eid, at_ns, evaluated_ms in receiver.records:
        if eid in produced_ns and eid not in first:
            first[eid] = (at_ns, evaluated_ms)
    latencies, to_eval, eval_to_intent, intent_to_recv = [], [], [], []
    for eid, (at_ns, evaluated_ms) in first.items():
        t0_ms = produced_ns[eid] / 1e6
        latencies.append(at_ns / 1e6 - t0_ms)
        if evaluated_ms is not None:
            to_eval.append(evaluated_ms - t0_ms)
            if eid in created_ms:
                eval_to_intent.append(created_ms[eid] - evaluated_ms)
        if eid in created_ms:
            intent_to_recv.append(at_ns / 1e6 - created_ms[eid])
    cpu = (mark_1["user_s"] - mark_0["user_s"]) + (mark_1["system_s"] - mark_0["system_s"])
    out = {
        "p50_ms": quantile(latencies, 50),
        "p99_ms": quantile(latencies, 99),
        "max_ms": max(latencies),
        "to_eval_p50_ms": quantile(to_eval, 50),
        "to_eval_p99_ms": quantile(to_eval, 99),
        "eval_intent_p50_ms": quantile(eval_to_intent, 50),
        "eval_intent_p99_ms": quantile(eval_to_intent, 99),
        "intent_recv_p50_ms": quantile(intent_to_recv, 50),
        "intent_recv_p99_ms": quantile(intent_to_recv, 99),
        "cores": cpu / window_s,
        "machine": (busy_1[0] - busy_0[0]) / max(1, busy_1[1] - busy_0[1]),
        "duplicates": sum(1 for r in receiver.records if r[1] in produced_ns) - len(first),
    }
    print(
        f"  {name}: {len(first)} transitions, 1 every ~{args.spacing_ms * 1.25:g} ms: result -> webhook p50 "
        f"{out['p50_ms']:.1f} p99 {out['p99_ms']:.1f} max {out['max_ms']:.0f} ms; stages p50/p99: -> evaluated "
        f"{out['to_eval_p50_ms']:.0f}/{out['to_eval_p99_ms']:.0f}, -> intent {out['eval_intent_p50_ms']:.0f}/"
        f"{out['eval_intent_p99_ms']:.0f}, -> received {out['intent_recv_p50_ms']:.0f}/{out['intent_recv_p99_ms']:.0f} ms; "
        f"{out['cores']:.2f} cores (machine {out['machine']:.0%}); duplicates {out['duplicates']}",
        flush=True,
    )
    return out


COLUMNS = {
    "fanout": [
        ("notif/s", "per_s", "{:,.0f}"),
        ("CPU s/1k", "cpu_per_1000", "{:.3f}"),
        ("cores", "cores", "{:.2f}"),
        ("machine", "machine", "{:.0%}"),
        ("p50 ms", "p50_ms", "{:,.0f}"),
        ("p99 ms", "p99_ms", "{:,.0f}"),
        ("->intent p50", "to_intent_p50_ms", "{:,.0f}"),
        ("intent->recv p50", "intent_recv_p50_ms", "{:,.0f}"),
        ("failed", "failed", "{:.0f}"),
        ("missing", "missing", "{:.0f}"),
        ("dup", "duplicates", "{:.0f}"),
    ],
    "pipeline": [
        ("p50 ms", "p50_ms", "{:.1f}"),
        ("p99 ms", "p99_ms", "{:.1f}"),
        ("max ms", "max_ms", "{:.0f}"),
        ("->eval p50/p99", ("to_eval_p50_ms", "to_eval_p99_ms"), "{:.0f}"),
        ("->intent p50/p99", ("eval_intent_p50_ms", "eval_intent_p99_ms"), "{:.0f}"),
        ("->recv p50/p99", ("intent_recv_p50_ms", "intent_recv_p99_ms"), "{:.0f}"),
        ("cores", "cores", "{:.2f}"),
        ("machine", "machine", "{:.0%}"),
        ("dup", "duplicates", "{:.0f}"),
    ],
}


def print_table(mode: str, runs: list[dict[str, Any]]) -> None:
    def cell(key: Any, fmt: str) -> str:
        if isinstance(key, tuple):
            return "/".join(cell(k, fmt) for k in key)
        return fmt.format(statistics.median(r[key] for r in runs))

    target = (
        f">= {FANOUT_TARGET:,.0f} notifications/s"
        if mode == "fanout"
        else f"p50 < {P50_TARGET_MS:g} ms, p99 < {P99_TARGET_MS:g} ms"
    )
    header = ["runs", *(c[0] for c in COLUMNS[mode])]
    values = [str(len(runs)), *(cell(key, fmt) for _, key, fmt in COLUMNS[mode])]
    widths = [max(len(h), len(v)) for h, v in zip(header, values, strict=True)]
    print(f"\n{mode} medians (target: {target})")
    print("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("  " + "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True)), flush=True)


async def orchestrate(args: argparse.Namespace) -> None:
    from uptimed.config import LogSettings
    from uptimed.log import configure

    configure(LogSettings(level="warning"), stream=sys.stderr)
    env = services_env()
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    modes = ["fanout", "pipeline"] if args.mode == "both" else [args.mode]
    receiver = Receiver()
    results: dict[str, list[dict[str, Any]]] = {}
    print(
        f"receiver 127.0.0.1:{receiver.port} (aiohttp, own process); {os.cpu_count()} CPUs; measured process logs at "
        f"{args.log_level} into {args.log_dir}; http client {args.http}; overrides {args.set or 'none'}",
        flush=True,
    )
    try:
        for mode in modes:
            results[mode] = []
            for run in range(args.repeat):
                results[mode].append(await one_run(mode, args, env, receiver, run))
    finally:
        await receiver.close()
        for mode, runs in results.items():
            if runs:
                print_table(mode, runs)
    if args.profile:
        for path in sorted(Path(args.profile).glob("*.txt")):
            summarise_profile(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["fanout", "pipeline", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=500, help="fanout: events published at once")
    parser.add_argument("--integrations", type=int, default=10, help="fanout: webhook integrations of the user")
    parser.add_argument("--monitors", type=int, default=100, help="monitors the events / results are about")
    parser.add_argument("--transitions", type=int, default=300, help="pipeline: results measured, each a transition")
    parser.add_argument(
        "--spacing-ms", type=float, default=50.0, help="pipeline: time between results (+0-50%% jitter)"
    )
    parser.add_argument(
        "--poll-ms", type=float, default=20.0, help="fanout: how often PostgreSQL is asked for SENT rows"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a measured phase may take")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    parser.add_argument("--log-dir", default="/tmp/uptimed-bench-notify", help="where the measured process logs")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a setting of the measured process",
    )
    parser.add_argument(
        "--http",
        choices=["daemon", "keepalive", "aiohttp"],
        default="daemon",
        help="the channels' httpx client: as the daemon builds it, or an experiment",
    )
    parser.add_argument("--profile", metavar="DIR", help="py-spy the measured process over each window into DIR")
    parser.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        receive()
    elif args.measure:
        import uvloop

        spec = json.loads(args.measure)
        with open(spec["log_path"], "a") as log_file:
            uvloop.run(measure(spec, log_file))
    else:
        import uvloop

        uvloop.run(orchestrate(args))


if __name__ == "__main__":
    main()
