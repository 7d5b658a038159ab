"""The web pages' cost at a realistic history: N monitors with D days of checks at one a minute.

    python bench/web.py --monitors 100 --days 30

Seeds a throwaway database (checks written with generate_series, so the
hourly roll-up trigger runs as it does for the evaluator), then prints the
median time of each page over --repeat requests through the app in-process
(no network), and what the roll-up trigger costs the evaluator's inserts:
batches of 2,000 check results through ``checks.insert_many`` with the
trigger on and off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from uptimed.app import create_app  # noqa: E402
from uptimed.channels.registry import default_registry  # noqa: E402
from uptimed.check import CheckResult, CheckStatus  # noqa: E402
from uptimed.config import DatabaseSettings, Settings  # noqa: E402
from uptimed.passwords import hash_password  # noqa: E402
from uptimed.store import checks  # noqa: E402
from uptimed.store.database import connect, migrate  # noqa: E402

PASSWORD = "bench password"
DATABASE = "uptimed_bench_web"
PAGES = ("/partials/monitors", "/", "/monitors/1", "/monitors/1?range=30d", "/status/bench")


def services_env() -> dict[str, str]:
    script = str(ROOT / "scripts" / "services")
    subprocess.run([sys.executable, script, "up"], check=True, capture_output=True)
    return json.loads(
        subprocess.run([sys.executable, script, "env", "--json"], check=True, capture_output=True, text=True).stdout
    )


async def seed(pool: asyncpg.Pool, monitors: int, days: int) -> int:
    owner = await pool.fetchval(
        "INSERT INTO users (username, email, password_hash) VALUES ('bench', 'bench@example.com', $1) RETURNING id",
        hash_password(PASSWORD),
    )
    await pool.execute(
        "INSERT INTO monitors (owner_id, name, target, interval_s, timeout_s) "
        "SELECT $1, 'monitor ' || n, 'https://m' || n || '.example/', 60, 10 FROM generate_series(1, $2) n",
        owner,
        monitors,
    )
    await pool.execute(
        "INSERT INTO status_pages (owner_id, slug, title, published, monitor_ids) "
        "SELECT $1, 'bench', 'Bench', true, array_agg(id) FROM monitors",
        owner,
    )
    started = time.perf_counter()
    await pool.execute(
        """
        INSERT INTO checks (monitor_id, region, checked_at, status, response_time_ms)
        SELECT m.id, 'eu', now() - make_interval(mins => s), CASE WHEN random() < 0.001 THEN 'down' ELSE 'up' END,
               20 + random() * 50
        FROM monitors m, generate_series(1, $1) s
        """,
        days * 1440,
    )
    await pool.execute("ANALYZE")
    print(
        f"seeded {monitors:,} monitors x {days} days: {monitors * days * 1440:,} checks in {time.perf_counter() - started:.1f} s"
    )
    return owner


async def time_pages(pool: asyncpg.Pool, dsn: str, repeat: int) -> None:
    settings = Settings(database={"dsn": dsn})
    async with httpx.AsyncClient() as http:
        app = create_app(pool=pool, registry=default_registry(), settings=settings, http=http, readiness=None)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            form = (await client.get("/login")).text
            token = form.split('name="csrf_token" value="')[1].split('"')[0]
            await client.post("/login", data={"csrf_token": token, "username": "bench", "password": PASSWORD})
            for path in PAGES:
                times = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    answer = await client.get(path)
                    times.append(time.perf_counter() - started)
                    assert answer.status_code == 200, (path, answer.status_code)
                print(f"  {path:28} median {statistics.median(times) * 1000:8.1f} ms  (min {min(times) * 1000:.1f})")


async def time_inserts(pool: asyncpg.Pool, batches: int) -> None:
    monitor_ids = [r["id"] for r in await pool.fetch("SELECT id FROM monitors ORDER BY id LIMIT 2000")]
    base = int(time.time() * 1000) + 10**8  # in the future: new rows, no conflicts with the seed

    async def run(label: str) -> float:
        nonlocal base
        times = []
        for _ in range(batches):
            results = [
                CheckResult(
                    monitor_id=monitor_ids[i % len(monitor_ids)],
                    region="eu",
                    checked_at_ms=base + i,
                    scheduled_at_ms=base + i,
                    status=CheckStatus.UP,
                    response_time_ms=30.0,
                )
                for i in range(2000)
            ]
            base += 2000
            async with pool.acquire() as conn, conn.transaction():
                started = time.perf_counter()
                await checks.insert_many(conn, results)
                times.append(time.perf_counter() - started)
        median = statistics.median(times)
        print(f"  insert_many, 2,000 results, {label:12} median {median * 1000:6.1f} ms")
        return median

    with_trigger = await run("roll-up on")
    await pool.execute("ALTER TABLE checks DISABLE TRIGGER checks_roll_up")
    without = await run("roll-up off")
    await pool.execute("ALTER TABLE checks ENABLE TRIGGER checks_roll_up")
    print(f"  the roll-up costs {(with_trigger / without - 1) * 100:+.0f}% per batch")


async def main(args: argparse.Namespace) -> None:
    admin = services_env()["UPTIMED_DATABASE__DSN"]
    conn = await asyncpg.connect(admin)
    await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    await conn.execute(f"CREATE DATABASE {DATABASE}")
    dsn = admin.rsplit("/", 1)[0] + "/" + DATABASE
    pool = await connect(DatabaseSettings(dsn=dsn))
    try:
        await migrate(pool)
        await seed(pool, args.monitors, args.days)
        print(f"pages ({args.repeat} requests each):")
        await time_pages(pool, dsn, args.repeat)
        print("the evaluator's writes:")
        await time_inserts(pool, args.batches)
    finally:
        await pool.close()
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batches", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
