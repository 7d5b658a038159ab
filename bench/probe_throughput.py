"""How many http checks one core runs a second.

Starts a minimal HTTP server in a subprocess (so it does not share the CPU of
the measured loop), runs ``--count`` checks through ``run_probe`` on one
session with ``--concurrency`` checks in flight, and prints checks/s, CPU
seconds per 1,000 checks (this process only) and the p50/p99 response time.

    python bench/probe_throughput.py [--count 20000] [--concurrency 100]
                                     [--keyword] [--close] [--uvloop]

``--keyword`` adds a keyword check (the body is read), ``--close`` makes the
server close every connection, as most real targets are checked on a fresh
connection (intervals are longer than keep-alive).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time

BODY = b"<html><body>All systems operational</body></html>"


def serve(close: bool) -> None:
    """The target: answer every request with a fixed 200 page, as fast as possible."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n" % len(BODY)
    response = head + (b"Connection: close\r\n" if close else b"") + b"\r\n" + BODY

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            # GET requests only: a request ends at its blank line.
            self.buffer += data
            requests = self.buffer.count(b"\r\n\r\n")
            if requests:
                self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
                self.transport.write(response * requests)
                if close:
                    self.transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def measure(port: int, args: argparse.Namespace) -> dict[str, float]:
    from uptimed.monitor import Monitor
    from uptimed.probe.http import make_session
    from uptimed.probe.kinds import run_probe

    http = {"keyword": "All systems operational"} if args.keyword else {}
    monitors = [
        Monitor(id=i, owner_id=1, name=f"m{i}", target=f"http://127.0.0.1:{port}/", interval=60, timeout=10, http=http)
        for i in range(1000)
    ]
    session = make_session(limit=args.concurrency)
    times: list[float] = []
    failures: list[str] = []

    async def worker(jobs: itertools.count, count: int) -> None:
        for n in jobs:
            if n >= count:
                return
            result = await run_probe(monitors[n % len(monitors)], region="bench", session=session)
            if result.ok:
                times.append(result.response_time_ms)
            else:
                failures.append(f"{result.error_class}: {result.error}")

    async def run(count: int) -> None:
        jobs = itertools.count()
        async with asyncio.TaskGroup() as group:
            for _ in range(args.concurrency):
                group.create_task(worker(jobs, count))

    try:
        await run(args.warmup)  # fill the connection pool and the caches
        times.clear()
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        await run(args.count)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        await session.close()
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    cpu = user + system
    if failures:
        print(f"{len(failures)} checks failed, first: {failures[0]}", file=sys.stderr)
    cuts = statistics.quantiles(times, n=100)
    return {
        "checks_per_s": args.count / wall,
        "checks_per_cpu_s": args.count / cpu,
        "cpu_s_per_1000": cpu / args.count * 1000,
        "system_share": system / cpu,
        "p50_ms": cuts[49],
        "p99_ms": cuts[98],
        "failed": len(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--keyword", action="store_true", help="check a keyword, so every body is read")
    parser.add_argument("--close", action="store_true", help="a new connection for every check")
    parser.add_argument("--uvloop", action="store_true", help="measure on uvloop instead of asyncio's loop")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.close)
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", *(["--close"] if args.close else [])],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        if args.uvloop:
            import uvloop

            figures = uvloop.run(measure(port, args))
        else:
            figures = asyncio.run(measure(port, args))
    finally:
        server.terminate()
        server.wait()
    loop = "uvloop" if args.uvloop else "asyncio"
    mode = ("keyword" if args.keyword else "status") + (", new connection each" if args.close else ", keep-alive")
    print(
        f"{args.count} checks ({mode}, {loop}, concurrency {args.concurrency}, pid {os.getpid()}): "
        f"{figures['checks_per_s']:,.0f} checks/s, {figures['checks_per_cpu_s']:,.0f} checks/CPU-s, "
        f"{figures['cpu_s_per_1000']:.3f} CPU s/1000 checks ({figures['system_share']:.0%} in the kernel), "
        f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, failed {figures['failed']}"
    )


if __name__ == "__main__":
    main()
