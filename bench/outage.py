"""What a Kafka outage does to the real ``uptimed run``: checking, alerts, their times.

Runs the daemon on a generated config (``--monitors`` steady http monitors at
1 s plus ``--flapping`` monitors with thresholds of 1, all against a local
target, and a webhook integration to a local receiver), waits until every
monitor is watched, then kills the session's Kafka broker with SIGKILL for
``--outage`` seconds. During the outage each flapping monitor goes down and
up again (half of them twice), on a script whose real times the bench keeps.
After the broker is back it prints, per run and as medians:

- checks during the outage as a share of the checks due (stored checks,
  counted by their own check times);
- transitions that happened during the outage, alerted once / lost / doubled
  (webhook deliveries, by event id);
- the largest gap between an alert's ``timestamp`` and the real flip, and
  between its ``downtimeSeconds`` and the real outage of the target;
- how long after the broker was reachable again the last alert arrived, and
  how many results the forwarder had buffered.

    python bench/outage.py [--monitors 300] [--flapping 10] [--outage 30] [--repeat 3]

It kills and restarts the broker of ``scripts/services``: run it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import SERVICES, Broker, DaemonProcess, Stack, Target, WebhookReceiver  # noqa: E402


def services_env() -> dict[str, str]:
    subprocess.run([sys.executable, str(SERVICES), "up"], check=True)
    out = subprocess.run([sys.executable, str(SERVICES), "env", "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def monitor_toml(url: str, name: str, *, thresholds: int | None = None) -> str:
    lines = ['owner = "bench"', f'name = "{name}"', f'target = "{url}"', 'interval = "1s"', 'timeout = "0.5s"']
    if thresholds:
        lines += [f"failure_threshold = {thresholds}", f"success_threshold = {thresholds}"]
    return "[[monitors]]\n" + "\n".join(lines) + "\n"


async def one_run(env: dict[str, str], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import asyncpg

    admin_dsn = env["UPTIMED_DATABASE__DSN"]
    database = f"bench_outage_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f"CREATE DATABASE {database}")
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + database
    stack = Stack(
        dsn=dsn,
        redis_url=env["UPTIMED_REDIS__URL"],
        bootstrap=env["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"],
        prefix=f"b{uuid.uuid4().hex[:8]}",
    )
    target = await Target().start()
    receiver = await WebhookReceiver().start()
    broker = Broker(stack.bootstrap)
    flappers = [f"f{i}" for i in range(args.flapping)]
    config = stack.toml(
        "".join(monitor_toml(target.url(f"/s{i}"), f"s{i}") for i in range(args.monitors))
        + "".join(monitor_toml(target.url(f"/{name}"), name, thresholds=1) for name in flappers)
        + f'[[integrations]]\nowner = "bench"\nkey = "hook"\ntype = "webhook"\n'
        f'config = {{ webhookUrl = "{receiver.url("/hook")}" }}\n'
    ).replace('level = "debug"', 'level = "info"')
    path = workdir / f"{stack.prefix}.toml"
    path.write_text(config)
    daemon = await DaemonProcess(path).start()
    conn = await asyncpg.connect(dsn)
    try:
        await daemon.wait_for("daemon.ready", timeout=60)
        deadline = time.monotonic() + 60
        while (
            await conn.fetchval("SELECT count(*) FROM monitor_state WHERE state->>'status' = 'up'")
            < args.monitors + args.flapping
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the monitors did not all come up within 60 s")
            await asyncio.sleep(0.2)

        broker.kill()
        killed_at = time.time()
        flips: dict[str, list[tuple[str, float]]] = {name: [] for name in flappers}
        twice = flappers[: len(flappers) // 2]
        script = [
            (0.15, flappers, 500),
            (0.35, twice, 200),
            (0.5, flappers[len(twice) :], 200),
            (0.6, twice, 500),
            (0.8, twice, 200),
        ]
        for share, names, status in script:
            await asyncio.sleep(max(0.0, share * args.outage - (time.time() - killed_at)))
            for name in names:
                target.by_path[f"/{name}"] = status
                flips[name].append(("website.down" if status == 500 else "website.up", time.time()))
        await asyncio.sleep(max(0.0, args.outage - (time.time() - killed_at)))
        restart_began = time.time()
        await broker.start()
        back_at = time.time()
        expected = sum(len(f) for f in flips.values())
        await receiver.wait_for("/hook", count=expected, timeout=300)
        last_alert = max(r.at for r in receiver.to("/hook"))
        last_alert_wall = time.time() - (asyncio.get_running_loop().time() - last_alert)
        window = (killed_at + 1, restart_began - 1)
        due = (args.monitors + args.flapping) * (window[1] - window[0])
        await asyncio.sleep(3)  # let the evaluator store the backlog's tail
        stored = await conn.fetchval(
            "SELECT count(*) FROM checks WHERE checked_at BETWEEN to_timestamp($1) AND to_timestamp($2)", *window
        )
        sent = [r.json()["data"] for r in receiver.to("/hook")]
        ids = [e["eventId"] for e in sent]
        ts_errors, downtime_errors, lost = [], [], 0
        for name in flappers:
            mine = sorted((e for e in sent if e["name"] == name), key=lambda e: e["timestamp"])
            if [e["type"] for e in mine] != [k for k, _ in flips[name]]:
                lost += 1
                continue
            ts_errors += [abs(e["timestamp"] / 1000 - t) for e, (_, t) in zip(mine, flips[name], strict=True)]
            real = [u - d for (_, d), (_, u) in zip(flips[name][::2], flips[name][1::2], strict=True)]
            told = [e["downtimeSeconds"] for e in mine if e["type"] == "website.up"]
            downtime_errors += [abs(a - b) for a, b in zip(told, real, strict=True)]
        back = daemon.events("forwarder.bus_back")
        return {
            "checks_share": stored / due,
            "transitions": expected,
            "alerted": len(set(ids)),
            "doubled": len(ids) - len(set(ids)),
            "lost_monitors": lost,
            "timestamp_error_ms": 1000 * max(ts_errors, default=0),
            "downtime_error_s": max(downtime_errors, default=0),
            "broker_restart_s": back_at - restart_began,
            "alerts_done_after_s": last_alert_wall - back_at,
            "buffered": back[0]["backlog"] if back else None,
        }
    finally:
        await daemon.stop()
        await conn.close()
        await target.stop()
        await receiver.stop()
        await broker.start()
        await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--monitors", type=int, default=300)
    parser.add_argument("--flapping", type=int, default=10)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds without a broker")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = services_env()
    workdir = ROOT / ".data" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    for index in range(args.repeat):
        load = Path("/proc/loadavg").read_text().split()[:3]
        figures = asyncio.run(one_run(env, args, workdir))
        runs.append(figures)
        print(
            f"run {index + 1} (load {' '.join(load)}): "
            + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()),
            flush=True,
        )
    print(
        f"\nmedians of {len(runs)} runs, {args.monitors} + {args.flapping} flapping monitors at 1 s, "
        f"{args.outage:g} s without a broker:"
    )
    for key in runs[0]:
        values = [r[key] for r in runs if r[key] is not None]
        if values:
            print(f"  {key:>22}: {statistics.median(values):.4g}   (range {min(values):.4g} - {max(values):.4g})")


if __name__ == "__main__":
    main()
