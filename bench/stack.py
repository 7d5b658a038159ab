"""The real ``uptimed run`` and its whole stack, measured from outside, as a user would run it.

Per run: a fresh database with ``--monitors`` http monitors at ``--interval``
(against a local keep-alive target in its own process that counts what it is
asked), a config file, and ``uptimed run`` started as a subprocess. Then:

- start-up: from starting the process to the target's first request, and to
  the moment every monitor has been checked once;
- over ``--window`` seconds after that: checks/s (requests the target
  answered) against the demand, CPU seconds per 1,000 checks of the daemon's
  process tree and of the whole stack (daemon + Kafka + PostgreSQL + Redis,
  utime+stime from /proc of each process tree), memory at the end (RSS; PSS
  for PostgreSQL, whose processes share their buffers), and what else the
  machine was doing meanwhile (cores used by other processes);
- with ``--processes 2`` (or more) several daemons share the work, as the
  README's scale-out section runs them; with ``--parts ROLES`` once per
  process each runs only those roles (``uptimed run --parts``), and every
  process's checks per CPU-second is printed too;
- with ``--python`` the daemons run on another interpreter, such as a
  virtualenv holding only uptimed's runtime dependencies (a user's install;
  this one also holds the test tools), still on this checkout's code.

Medians of ``--repeat`` runs are printed, with each run's figures and load.
The services come from ``scripts/services`` (started if down); each run
removes its database, topics and Redis keys.

    python bench/stack.py --monitors 10000 --interval 60 --window 60 --repeat 3
    python bench/stack.py --monitors 1000 --interval 60
    python bench/stack.py --monitors 10000 --interval 1 --window 30          # the ceiling
    python bench/stack.py --monitors 10000 --interval 1 --window 30 --parts probe --parts evaluate,notify,api,retention
    python bench/stack.py --monitors 0 --window 30                           # idle
    python bench/stack.py --suite                                            # the rows of TARGETS.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import SERVICES, pid_listening_on  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


# --- /proc ----------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def all_parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))):
            parents[int(entry)] = int(fields[1])
    return parents


def tree(root: int, parents: dict[int, int] | None = None) -> list[int]:
    """``root`` and every process below it."""
    parents = parents if parents is not None else all_parents()
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        if fields := _stat(pid):
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def memory_kib(pids: list[int], field: str = "Rss") -> int:
    """Sum of ``field`` (Rss or Pss) over the processes, from smaps_rollup."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def machine_busy_s() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / TICKS


# --- one run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    monitors: int
    interval: float
    window: float
    processes: int = 1
    parts: tuple[str, ...] = ()
    """Per process, the roles it runs (``--parts`` of ``uptimed run``); empty: every process runs all of them."""

    def label(self) -> str:
        if self.parts:
            procs = " as " + " + ".join(self.parts)
        else:
            procs = f" x{self.processes} processes" if self.processes > 1 else ""
        return f"{self.monitors:>6} @ {self.interval:g} s{procs}"

    def commands(self, python: str, path: Path) -> list[list[str]]:
        """The command line of each daemon."""
        run = [python, "-m", "uptimed", "run", "-c", str(path)]
        if self.parts:
            return [[*run, "--parts", roles] for roles in self.parts]
        return [run] * self.processes


SUITE = [
    Config(1_000, 60, 120),
    Config(10_000, 60, 120),
    Config(10_000, 1, 30),
    Config(10_000, 1, 30, processes=2),
    Config(0, 60, 30),
]
"""The rows of TARGETS.md: small and large installs at 60 s, the ceiling with one and two processes, idle."""


def services() -> dict[str, str]:
    if subprocess.run([sys.executable, str(SERVICES), "status"], check=False, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, str(SERVICES), "up"], check=True)
    out = subprocess.run([sys.executable, str(SERVICES), "env", "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def service_roots(env: dict[str, str]) -> dict[str, list[int]]:
    """The process trees of Kafka (each broker), PostgreSQL and Redis, found by their listening ports."""
    kafka_ports = [int(a.rsplit(":", 1)[1]) for a in env["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"].split(",")]
    pg_port = int(env["UPTIMED_DATABASE__DSN"].rsplit(":", 1)[1].split("/", 1)[0])
    redis_port = int(env["UPTIMED_REDIS__URL"].rsplit(":", 1)[1].split("/", 1)[0])
    parents = all_parents()
    return {
        "kafka": [p for port in kafka_ports for p in tree(pid_listening_on(port), parents)],
        "postgres": tree(pid_listening_on(pg_port), parents),
        "redis": tree(pid_listening_on(redis_port), parents),
    }


async def stats(port: int) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /__stats HTTP/1.1\r\nHost: bench\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
    )
    body = await reader.readexactly(length)
    writer.close()
    return json.loads(body)


def config_toml(env: dict[str, str], dsn: str, prefix: str) -> str:
    return f"""
[database]
dsn = "{dsn}"
pool_max = 20
[redis]
url = "{env["UPTIMED_REDIS__URL"]}"
key_prefix = "{prefix}:"
[kafka]
bootstrap_servers = {json.dumps(env["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"].split(","))}
evaluator_group = "{prefix}.evaluator"
notification_group = "{prefix}.notification-group"
retention = 3600
[kafka.topics]
checks = "{prefix}.checks"
events = "{prefix}.events"
dead_letters = "{prefix}.dlq"
[api]
port = 0
[security]
# The bench's monitors are rows of a user (as the API makes them), aimed at a target on this machine.
allow_networks = ["127.0.0.0/8"]
[log]
format = "json"
level = "info"
"""


async def prepare(env: dict[str, str], config: Config, port: int) -> tuple[str, str, Path]:
    import asyncpg

    from uptimed.bus.kafka import ensure_topics
    from uptimed.config import DatabaseSettings, parse_settings
    from uptimed.store.database import connect, migrate

    prefix = f"bstack{uuid.uuid4().hex[:8]}"
    admin_dsn = env["UPTIMED_DATABASE__DSN"]
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + prefix
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f"CREATE DATABASE {prefix}")
    await conn.close()
    pool = await connect(DatabaseSettings(dsn=dsn))
    await migrate(pool)
    owner = await pool.fetchval(
        "INSERT INTO users (username, email) VALUES ('bench', 'bench@example.com') RETURNING id"
    )
    await pool.execute(
        "INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s) "
        "SELECT $1, 'm' || n, 'http://127.0.0.1:' || $2::text || '/m' || n, $3, $4 FROM generate_series(1, $5) n",
        owner, str(port), config.interval, min(10.0, config.interval), config.monitors,
    )  # fmt: skip
    await pool.close()
    text = config_toml(env, dsn, prefix)
    await ensure_topics(parse_settings(text).kafka)  # as after an earlier start: the daemon finds them
    path = ROOT / ".data" / "bench" / f"{prefix}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return prefix, dsn, path


async def cleanup(env: dict[str, str], prefix: str, path: Path) -> None:
    """The run's topics, Redis keys and database (named after its prefix), then its config file."""
    from monitoring import cleanup as remove_run

    await remove_run(env, prefix, prefix)
    path.unlink(missing_ok=True)


async def one_run(env: dict[str, str], config: Config, args: argparse.Namespace) -> dict[str, float]:
    target = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("target.py")), "--counting"], stdout=subprocess.PIPE, text=True
    )
    assert target.stdout is not None
    port = int(target.stdout.readline())
    prefix, _, path = await prepare(env, config, port)
    daemons: list[subprocess.Popen[bytes]] = []
    commands = config.commands(args.python, path)
    logs = [path.with_suffix(f".{i}.log") for i in range(len(commands))]
    try:
        started = time.time()
        for command, log_path in zip(commands, logs, strict=True):
            with log_path.open("wb") as log:
                daemons.append(
                    subprocess.Popen(
                        command,
                        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                        env={k: v for k, v in os.environ.items() if not k.startswith("UPTIMED_")},
                    )
                )  # fmt: skip
        first = all_checked = None
        deadline = time.monotonic() + 120 + 2 * config.interval
        while time.monotonic() < deadline:
            seen = await stats(port)
            if first is None and seen["first"] is not None:
                first = seen["first"] - started
            if seen["distinct"] >= config.monitors and (first is not None or not config.monitors):
                all_checked = time.time() - started
                break
            await asyncio.sleep(0.02)
        if all_checked is None:
            raise RuntimeError(f"not every monitor was checked within the deadline ({seen})")
        if not config.monitors:  # idle: give it a moment to settle after start
            await asyncio.sleep(5)
        roots = service_roots(env)
        groups = lambda: {  # noqa: E731 - re-read: daemons fork nothing, but PostgreSQL does
            "daemon": [p for d in daemons for p in tree(d.pid)],
            **{f"daemon {i}": tree(d.pid) for i, d in enumerate(daemons)},
            "kafka": roots["kafka"],
            "postgres": tree(roots["postgres"][0]),
            "redis": roots["redis"],
            "target": [target.pid],
        }
        profiler = None
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            profile_path = Path(args.profile) / f"stack-n{config.monitors}-i{config.interval:g}-{prefix}.txt"
            profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "--format", "raw", "--rate", "200", "--duration",
                 str(int(config.window)), "--pid", str(daemons[0].pid), "--output", str(profile_path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        before_groups = groups()
        cpu_0 = {name: cpu_s(pids) for name, pids in before_groups.items()}
        busy_0, requests_0, t0 = machine_busy_s(), (await stats(port))["requests"], time.monotonic()
        await asyncio.sleep(config.window)
        after_groups = groups()
        cpu_1 = {name: cpu_s(pids) for name, pids in after_groups.items()}
        busy_1, requests_1, t1 = machine_busy_s(), (await stats(port))["requests"], time.monotonic()
        seconds = t1 - t0
        checks = requests_1 - requests_0
        if profiler is not None:
            profiler.wait()
            from monitoring import summarise_profile

            summarise_profile(profile_path)
        cpu = {name: cpu_1[name] - cpu_0.get(name, 0.0) for name in cpu_1}
        stack_cpu = cpu["daemon"] + cpu["kafka"] + cpu["postgres"] + cpu["redis"]
        memory = {
            "daemon": memory_kib(after_groups["daemon"]) / 1024,
            "kafka": memory_kib(after_groups["kafka"]) / 1024,
            "postgres": memory_kib(after_groups["postgres"], "Pss") / 1024,
            "redis": memory_kib(after_groups["redis"]) / 1024,
        }
        measured = sum(cpu[name] for name in ("daemon", "kafka", "postgres", "redis", "target"))
        # Checks per CPU-second of a process of each kind (a role set): every check passes through one process
        # of each kind, so its figure is the checks divided by the CPU its processes used together.
        kinds = list(config.parts) if config.parts else ["all"] * len(daemons)
        cpu_by_kind: dict[str, float] = {}
        for i, kind in enumerate(kinds):
            cpu_by_kind[kind] = cpu_by_kind.get(kind, 0.0) + cpu[f"daemon {i}"]
        per_process = {f"process {kind}": checks / used if used else float("nan") for kind, used in cpu_by_kind.items()}
        return {
            "checks_per_s": checks / seconds,
            "due_per_s": config.monitors / config.interval,
            "daemon_cpu_per_1000": cpu["daemon"] / checks * 1000 if checks else float("nan"),
            "stack_cpu_per_1000": stack_cpu / checks * 1000 if checks else float("nan"),
            "daemon_cores": cpu["daemon"] / seconds,
            "stack_cores": stack_cpu / seconds,
            "kafka_cores": cpu["kafka"] / seconds,
            "postgres_cores": cpu["postgres"] / seconds,
            "redis_cores": cpu["redis"] / seconds,
            "daemon_mib": memory["daemon"],
            "kafka_mib": memory["kafka"],
            "postgres_pss_mib": memory["postgres"],
            "redis_mib": memory["redis"],
            "stack_mib": sum(memory.values()),
            "first_check_s": first if first is not None else float("nan"),
            "all_checked_s": all_checked,
            "other_cores": max(0.0, (busy_1 - busy_0) - measured) / seconds,
            **per_process,
        }
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        target.kill()
        target.wait()
        await cleanup(env, prefix, path)
        for log_path in logs:
            if not args.keep_logs:
                log_path.unlink(missing_ok=True)


def show(label: str, figures: dict[str, float]) -> str:
    f = figures
    per_process = {k.removeprefix("process "): v for k, v in f.items() if k.startswith("process ")}
    return (
        f"{label}: {f['checks_per_s']:,.0f} checks/s (due {f['due_per_s']:,.0f}); CPU s/1000 checks daemon "
        f"{f['daemon_cpu_per_1000']:.3f} stack {f['stack_cpu_per_1000']:.3f}; cores daemon {f['daemon_cores']:.3f} "
        f"kafka {f['kafka_cores']:.3f} postgres {f['postgres_cores']:.3f} redis {f['redis_cores']:.3f}; MiB daemon "
        f"{f['daemon_mib']:.0f} kafka {f['kafka_mib']:.0f} postgres(PSS) {f['postgres_pss_mib']:.0f} redis "
        f"{f['redis_mib']:.0f} stack {f['stack_mib']:.0f}; start -> first check {f['first_check_s']:.2f} s, "
        f"-> all {f['all_checked_s']:.2f} s; other load {f['other_cores']:.2f} cores"
        + (
            f"; checks per CPU-s by the processes of each kind: {', '.join(f'{k} {v:,.0f}' for k, v in per_process.items())}"
            if len(per_process) > 1
            else ""
        )
    )


async def main_async(args: argparse.Namespace) -> None:
    env = services()
    if args.suite:
        configs = [c if args.window is None else replace(c, window=args.window) for c in SUITE]
    else:
        parts = tuple(args.parts or ())
        configs = [Config(args.monitors, args.interval, args.window or 60.0, len(parts) or args.processes, parts)]
    results: dict[Config, list[dict[str, float]]] = {c: [] for c in configs}
    for run in range(args.repeat):
        for config in configs:  # interleaved: each round runs every configuration once
            figures = await one_run(env, config, args)
            results[config].append(figures)
            print(f"run {run + 1} {show(config.label(), figures)}", flush=True)
    print(f"\nmedians of {args.repeat} runs:")
    for config, runs in results.items():
        medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(show(config.label(), medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument(
        "--window", type=float, help="seconds measured after every monitor was checked (60; the suite's own per row)"
    )
    parser.add_argument("--processes", type=int, default=1, help="uptimed processes sharing the work")
    parser.add_argument(
        "--parts",
        action="append",
        metavar="ROLES",
        help="one process running these roles (uptimed run --parts); repeat for each process: "
        "--parts probe --parts evaluate,notify,api,retention",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter that runs the daemons (default: this one); for example a virtualenv with only "
        "uptimed's runtime dependencies, as users install it (`pip install .`): the checkout's code still runs",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--suite", action="store_true", help="every row of TARGETS.md, interleaved")
    parser.add_argument("--keep-logs", action="store_true", help="keep the daemons' logs under .data/bench/")
    parser.add_argument("--profile", metavar="DIR", help="record the (first) daemon with py-spy over the window")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
