"""Checks/s, schedule lag, CPU and memory of the monitoring pipeline in one process.

Drives ``--monitors`` http monitors at ``--interval`` through the real
pipeline (Scheduler -> Redis stream -> ProbeWorker -> Redis result stream ->
Forwarder -> Kafka ``checks``, and
with ``--evaluator`` the Evaluator -> PostgreSQL too) against the real
services, and prints, as medians of ``--repeat`` runs:

- checks/s: results on the checks topic whose probe started in the window;
- schedule lag p50/p99/max: ``checked_at_ms - scheduled_at_ms`` (due -> probe
  started), read from the topic after the run, so not by the measured process;
- CPU s per 1,000 checks and cores busy: ``getrusage`` of the measured process
  over the window (the target, Kafka, Redis and PostgreSQL are not counted);
- RSS: of the measured process with its connections open before the monitors
  are loaded (baseline), at the end of the window, and the difference per monitor;
- with ``--evaluator``: results/s the evaluator stored and its backlog at the end.

Three processes: this one sets up and reads the results; the target (a
minimal keep-alive HTTP/1.1 server) and the measured process (uvloop) are
its children. Each run gets a fresh database, Redis key prefix and Kafka
topics, and removes them afterwards.

    python bench/monitoring.py [--monitors 10000] [--interval 60] [--duration 120]
                               [--repeat 3] [--evaluator] [--close] [--profile DIR]
    python bench/monitoring.py --suite      # the matrix of TARGETS.md, 3 runs each

Set ``interval`` well below ``monitors / capacity`` (e.g. 10,000 at 1 s) to
measure the ceiling: the pipeline is then saturated, checks/s is its
capacity, and the lag only says how far behind it fell. ``--profile DIR``
records the measured process with py-spy over the window (collapsed stacks
plus the top own-time functions, printed).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's uptimed, not the one installed (two checkouts are compared)
SERVICES = ROOT / "scripts" / "services"
BODY = b"<html><body>All systems operational</body></html>"
REGION = "default"
PARTITIONS = 6

LAG_TARGET_MS = 1000
THROUGHPUT_TARGET = 5000


# --- the target -------------------------------------------------------------------------------


def serve(close: bool) -> None:
    """Answer every GET with a fixed 200 page, as fast as possible (see probe_throughput.py)."""
    import uvloop

    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n" % len(BODY)
    response = head + (b"Connection: close\r\n" if close else b"") + b"\r\n" + BODY

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            requests = self.buffer.count(b"\r\n\r\n")
            if requests:
                self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
                self.transport.write(response * requests)
                if close:
                    self.transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


# --- the measured process ---------------------------------------------------------------------


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def emit(**fields: Any) -> None:
    """A line for the parent on stdout (logs go to stderr)."""
    print(json.dumps(fields), flush=True)


async def measure(spec: dict[str, Any]) -> None:
    import anyio
    import redis.asyncio as aioredis

    from uptimed.bus.kafka import make_producer
    from uptimed.config import LogSettings, Settings
    from uptimed.evaluate.evaluator import Evaluator
    from uptimed.log import configure
    from uptimed.probe.forwarder import Forwarder
    from uptimed.probe.http import make_session
    from uptimed.probe.queue import ProbeQueue
    from uptimed.probe.scheduler import Scheduler, process_identity
    from uptimed.probe.worker import ProbeWorker
    from uptimed.store.database import connect
    from uptimed.store.monitor_feed import MonitorFeed, MonitorListener

    configure(LogSettings(level="warning", format="json"), stream=sys.stderr)
    settings = Settings(**spec["settings"])
    pool = await connect(settings.database)
    redis = aioredis.from_url(settings.redis.url.get_secret_value(), health_check_interval=15, retry_on_timeout=True)
    await redis.ping()
    producer = make_producer(settings.kafka)
    await producer.start()
    session = make_session(limit=settings.probe.concurrency)

    feed = MonitorFeed()
    listener = MonitorListener(feed, pool)
    queue = ProbeQueue(redis, prefix=settings.redis.key_prefix, region=REGION, feed=feed)
    scheduler = Scheduler(
        redis=redis,
        queue=queue,
        feed=feed,
        configured_regions=settings.probe.all_regions,
        prefix=settings.redis.key_prefix,
    )
    identity = process_identity()
    worker = ProbeWorker(queue=queue, session=session, consumer=identity, concurrency=settings.probe.concurrency)
    forwarder = Forwarder(
        redis=redis,
        producer=producer,
        topic=settings.kafka.topics.checks,
        prefix=settings.redis.key_prefix,
        region=REGION,
        buffer_max=settings.probe.buffer_max,
        token=identity,
    )
    evaluator = Evaluator(settings=settings, pool=pool, producer=producer, feed=feed) if spec["evaluator"] else None

    async def stored_checks() -> int:
        return await pool.fetchval("SELECT count(*) FROM checks") if evaluator else 0

    gc.collect()
    rss_baseline = rss_kib()
    scheduling = anyio.CancelScope()

    async def schedule() -> None:
        with scheduling:
            await scheduler.run()

    try:
        async with anyio.create_task_group() as parts:
            parts.start_soon(listener.run)
            parts.start_soon(schedule)
            parts.start_soon(worker.run)
            parts.start_soon(forwarder.run)
            if evaluator:
                parts.start_soon(evaluator.run)
            await anyio.sleep(spec["warmup"])
            stored_0 = await stored_checks()
            skipped_0 = scheduler.skipped_in_flight
            user_0, system_0 = cpu_s()
            t0 = time.time()
            emit(event="window")
            await anyio.sleep(spec["duration"])
            t1 = time.time()
            user_1, system_1 = cpu_s()
            emit(event="window_end")
            published, skipped_1 = worker.checks_done, scheduler.skipped_in_flight
            rss_end = rss_kib()
            stored_1 = await stored_checks()
            # Stop scheduling first and let the checks in flight finish, so the window's results are all published.
            scheduling.cancel()
            await anyio.sleep(1.0)
            while await redis.xlen(forwarder.stream):  # and forwarded
                await anyio.sleep(0.1)
            stopping = time.monotonic()
            parts.cancel_scope.cancel()
        stop_s = time.monotonic() - stopping
    finally:
        await session.close()
        await producer.stop()
        await redis.aclose()
        await pool.close()
    emit(
        event="figures",
        t0_ms=int(t0 * 1000),
        t1_ms=int(t1 * 1000),
        user_s=user_1 - user_0,
        system_s=system_1 - system_0,
        published_total=published,
        skipped_in_flight=skipped_1 - skipped_0,
        stored=stored_1 - stored_0,
        stored_total=stored_1,
        rss_baseline_kib=rss_baseline,
        rss_end_kib=rss_end,
        rss_peak_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        stop_s=stop_s,
    )


# --- the orchestrator -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    monitors: int
    interval: float
    duration: float
    evaluator: bool

    def label(self) -> str:
        return f"{self.monitors:>6} @ {self.interval:g} s{' +eval' if self.evaluator else ''}"


SUITE = [
    Config(1_000, 60, 120, False),
    Config(10_000, 60, 120, False),
    Config(10_000, 60, 120, True),
    Config(20_000, 60, 60, False),
    Config(10_000, 2, 40, False),
    Config(10_000, 2, 40, True),
]
"""Lag and memory at the realistic 60 s interval, then the ceiling: 5,000 checks/s due, the target."""


def services_env() -> dict[str, str]:
    if subprocess.run([sys.executable, str(SERVICES), "status"], check=False, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, str(SERVICES), "up"], check=True)
    out = subprocess.run([sys.executable, str(SERVICES), "env", "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def settings_sections(env: dict[str, str], dsn: str, prefix: str, concurrency: int) -> dict[str, Any]:
    return {
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
        "probe": {"regions": [REGION], "concurrency": concurrency},
        "api": {"enabled": False},
    }


async def read_checks(bootstrap: str, topic: str, t0_ms: int, t1_ms: int) -> tuple[list[int], int, list[str]]:
    """Lags (ms) of the results whose probe started in [t0, t1), how many failed, and a few failures."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        lags: list[int] = []
        failed = 0
        failures: list[str] = []
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000, max_records=20_000)
            for tp, records in batch.items():
                for record in records:
                    result = json.loads(record.value)
                    if not t0_ms <= result["checked_at_ms"] < t1_ms:
                        continue
                    lags.append(result["checked_at_ms"] - result["scheduled_at_ms"])
                    if result["status"] != "up":
                        failed += 1
                        if len(failures) < 3:
                            failures.append(f"{result['error_class']}: {result['error']}")
                if records and records[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
        return lags, failed, failures
    finally:
        await consumer.stop()


async def cleanup(env: dict[str, str], prefix: str, database: str) -> None:
    import asyncpg
    import redis.asyncio as aioredis
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=env["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
    redis = aioredis.from_url(env["UPTIMED_REDIS__URL"])
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    conn = await asyncpg.connect(env["UPTIMED_DATABASE__DSN"])
    await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    await conn.close()


async def one_run(
    config: Config, args: argparse.Namespace, env: dict[str, str], port: int, target_pid: int, run: int
) -> dict[str, Any]:
    import asyncpg

    from uptimed.bus.kafka import ensure_topics
    from uptimed.config import DatabaseSettings, Settings
    from uptimed.monitor import MonitorSpec
    from uptimed.store import monitors
    from uptimed.store.database import connect, migrate

    prefix = f"bench{uuid.uuid4().hex[:10]}"
    admin_dsn = env["UPTIMED_DATABASE__DSN"]
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + prefix
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"CREATE DATABASE {prefix}")
    await conn.close()
    child: asyncio.subprocess.Process | None = None
    try:
        sections = settings_sections(env, dsn, prefix, args.concurrency)
        settings = Settings(**sections)
        pool = await connect(DatabaseSettings(dsn=dsn))
        await migrate(pool)
        timeout = min(10.0, config.interval)
        specs = [
            MonitorSpec(
                owner="bench",
                name=f"m{i}",
                target=f"http://127.0.0.1:{port}/m{i}",
                interval=config.interval,
                timeout=timeout,
            )
            for i in range(config.monitors)
        ]
        await monitors.sync_from_config(pool, specs)
        await pool.close()
        await ensure_topics(settings.kafka)

        spec = {"settings": sections, "evaluator": config.evaluator, "warmup": args.warmup, "duration": config.duration}
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--measure", json.dumps(spec), stdout=asyncio.subprocess.PIPE
        )
        assert child.stdout is not None
        profiler = None
        figures: dict[str, Any] = {}
        names = {child.pid: "measured", target_pid: "target"}
        load: list[tuple[Any, ...]] = []
        async with asyncio.timeout(args.warmup + config.duration + 180):
            async for line in child.stdout:
                message = json.loads(line)
                if message["event"] in ("window", "window_end"):
                    load.append(load_snapshot(child.pid))
                if message["event"] == "window" and args.profile:
                    profiler = start_profiler(args.profile, child.pid, config, run)
                elif message["event"] == "figures":
                    figures = message
        if await child.wait() != 0 or not figures:
            raise RuntimeError(f"the measured process failed (exit {child.returncode})")
        if profiler:
            profiler.wait()
        lags, failed, failures = await read_checks(
            env["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"], settings.kafka.topics.checks, figures["t0_ms"], figures["t1_ms"]
        )
    finally:
        if child and child.returncode is None:
            child.kill()
            await child.wait()
        await cleanup(env, prefix, prefix)

    seconds = (figures["t1_ms"] - figures["t0_ms"]) / 1000
    cpu = figures["user_s"] + figures["system_s"]
    count = len(lags)
    cuts = statistics.quantiles(lags, n=100, method="inclusive") if count > 1 else [float("nan")] * 99
    out = {
        "checks_per_s": count / seconds,
        "lag_p50_ms": cuts[49],
        "lag_p99_ms": cuts[98],
        "lag_max_ms": max(lags, default=float("nan")),
        "cpu_per_1000": cpu / count * 1000 if count else float("nan"),
        "checks_per_cpu_s": count / cpu if cpu else float("nan"),
        "cores": cpu / seconds,
        "cpu_wait": (load[1][2] - load[0][2]) / seconds,
        "system_share": figures["system_s"] / cpu if cpu else 0.0,
        "rss_baseline_mib": figures["rss_baseline_kib"] / 1024,
        "rss_end_mib": figures["rss_end_kib"] / 1024,
        "kib_per_monitor": (figures["rss_end_kib"] - figures["rss_baseline_kib"]) / config.monitors,
        "stored_per_s": figures["stored"] / seconds,
        "eval_backlog": figures["published_total"] - figures["stored_total"] if config.evaluator else 0,
        "skipped_per_s": figures["skipped_in_flight"] / seconds,
        "failed": failed,
    }
    print(
        f"  run {run + 1}: {config.label()}: {out['checks_per_s']:,.0f} checks/s "
        f"(demand {config.monitors / config.interval:,.0f}, skipped in flight {out['skipped_per_s']:,.0f}/s), "
        f"lag p50 {out['lag_p50_ms']:.0f} p99 {out['lag_p99_ms']:.0f} max {out['lag_max_ms']:.0f} ms, "
        f"{out['cpu_per_1000']:.3f} CPU s/1000 ({out['cores']:.2f} cores, {out['system_share']:.0%} kernel), "
        f"RSS {out['rss_baseline_mib']:.1f} -> {out['rss_end_mib']:.1f} MiB "
        f"(peak {figures['rss_peak_kib'] / 1024:.1f}), "
        + (f"evaluator {out['stored_per_s']:,.0f}/s backlog {out['eval_backlog']:,}, " if config.evaluator else "")
        + f"failed {failed}"
        + (f" ({failures[0]})" if failures else "")
        + (f"; stopping took {figures['stop_s']:.1f} s" if figures["stop_s"] > 2 else ""),
        flush=True,
    )
    print(f"         {machine_load(load[0], load[1], seconds, names)}", flush=True)
    return out


def cpu_by_process() -> dict[tuple[int, str], float]:
    """CPU seconds so far of every process, by (pid, command name)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[tuple[int, str], float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        out[(int(entry.name), text[text.index("(") + 1 : text.rindex(")")])] = (
            int(fields[11]) + int(fields[12])
        ) / ticks
    return out


def machine_ticks() -> tuple[int, int]:
    """Busy and total jiffies of all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


def waited_s(pid: int) -> float:
    """Seconds ``pid`` has spent runnable but waiting for a CPU (the kernel's schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def load_snapshot(pid: int) -> tuple[Any, ...]:
    return cpu_by_process(), machine_ticks(), waited_s(pid)


def machine_load(before: tuple[Any, ...], after: tuple[Any, ...], seconds: float, names: dict[int, str]) -> str:
    """Who used the CPUs over the window: the machine is shared, so say how busy it was and with what."""
    (procs_0, (busy_0, total_0), waited_0), (procs_1, (busy_1, total_1), waited_1) = before, after
    cores = os.cpu_count() or 1
    used: collections.Counter[str] = collections.Counter()
    for (pid, comm), seconds_1 in procs_1.items():
        used[names.get(pid, comm)] += seconds_1 - procs_0.get((pid, comm), 0.0)
    busy = (busy_1 - busy_0) / (total_1 - total_0) * cores
    top = ", ".join(f"{name} {value / seconds:.2f}" for name, value in used.most_common(6) if value / seconds >= 0.01)
    return (
        f"machine {busy:.2f} of {cores} cores busy: {top}; "
        f"the measured process waited for a CPU {(waited_1 - waited_0) / seconds:.0%} of the window"
    )


def start_profiler(directory: str, pid: int, config: Config, run: int) -> subprocess.Popen:
    if not shutil.which("py-spy"):
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    Path(directory).mkdir(parents=True, exist_ok=True)
    name = f"n{config.monitors}-i{config.interval:g}{'-eval' if config.evaluator else ''}-run{run + 1}.txt"
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            "200",
            "--duration",
            str(int(config.duration) - 1),
            "--pid",
            str(pid),
            "--output",
            str(Path(directory) / name),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


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
    print(f"  {path.name}: {samples} samples; own time:")
    for frame, count in own.most_common(top):
        print(f"    {count / samples:6.1%}  {frame}")
    print("  inclusive:")
    for frame, count in total.most_common(top + 10):
        print(f"    {count / samples:6.1%}  {frame}")


MEDIAN_COLUMNS = [
    ("checks/s", "checks_per_s", "{:,.0f}"),
    ("lag p50 ms", "lag_p50_ms", "{:,.0f}"),
    ("lag p99 ms", "lag_p99_ms", "{:,.0f}"),
    ("CPU s/1k", "cpu_per_1000", "{:.3f}"),
    ("checks/CPU-s", "checks_per_cpu_s", "{:,.0f}"),
    ("cores", "cores", "{:.2f}"),
    ("CPU wait", "cpu_wait", "{:.0%}"),
    ("RSS base MiB", "rss_baseline_mib", "{:.1f}"),
    ("RSS end MiB", "rss_end_mib", "{:.1f}"),
    ("KiB/monitor", "kib_per_monitor", "{:.2f}"),
    ("eval/s", "stored_per_s", "{:,.0f}"),
    ("failed", "failed", "{:,.0f}"),
]


def print_table(rows: list[tuple[Config, list[dict[str, Any]]]]) -> None:
    header = ["monitors @ interval", "runs", *(c[0] for c in MEDIAN_COLUMNS)]
    lines = [header]
    for config, runs in rows:
        cells = [config.label(), str(len(runs))]
        for _, key, fmt in MEDIAN_COLUMNS:
            cells.append(fmt.format(statistics.median(r[key] for r in runs)) if runs else "-")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(
        f"\nmedians (targets: >= {THROUGHPUT_TARGET:,} checks/s; lag p99 < {LAG_TARGET_MS} ms at 10,000 @ 60 s; "
        "RSS baseline <= 80 MiB, <= 2 KiB/monitor)"
    )
    for line in lines:
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))


async def orchestrate(args: argparse.Namespace, env: dict[str, str], port: int, target_pid: int) -> None:
    from uptimed.config import LogSettings
    from uptimed.log import configure

    configure(LogSettings(level="warning"), stream=sys.stderr)
    configs = SUITE if args.suite else [Config(args.monitors, args.interval, args.duration, args.evaluator)]
    print(
        f"target 127.0.0.1:{port} ({'new connection each check' if args.close else 'keep-alive'}), "
        f"concurrency {args.concurrency}, warmup {args.warmup:g} s, {os.cpu_count()} CPUs",
        flush=True,
    )
    rows: list[tuple[Config, list[dict[str, Any]]]] = []
    try:
        for config in configs:
            runs: list[dict[str, Any]] = []
            rows.append((config, runs))
            for run in range(args.repeat):
                try:
                    runs.append(await one_run(config, args, env, port, target_pid, run))
                except (RuntimeError, TimeoutError, OSError) as exc:
                    print(f"  run {run + 1}: {config.label()}: failed: {exc!r}", flush=True)
    finally:
        print_table(rows)
    if args.profile:
        for path in sorted(Path(args.profile).glob("*.txt")):
            summarise_profile(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between checks of a monitor")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds measured, after the warmup")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds run before measuring")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evaluator", action="store_true", help="run the evaluator in the measured process too")
    parser.add_argument("--concurrency", type=int, default=100, help="[probe] concurrency")
    parser.add_argument("--close", action="store_true", help="the target closes every connection")
    parser.add_argument("--suite", action="store_true", help="run the standard matrix instead of one configuration")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the measured process over each window into DIR")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.close)
    elif args.measure:
        import uvloop

        uvloop.run(measure(json.loads(args.measure)))
    else:
        env = services_env()
        target = subprocess.Popen(
            [sys.executable, __file__, "--serve", *(["--close"] if args.close else [])],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert target.stdout is not None
            asyncio.run(orchestrate(args, env, int(target.stdout.readline()), target.pid))
        finally:
            target.terminate()
            target.wait()


if __name__ == "__main__":
    main()
