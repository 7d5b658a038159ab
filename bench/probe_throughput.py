"""How many checks of a kind one core runs a second.

Starts a minimal server for the kind in a subprocess (so it does not share the
CPU of the measured loop), runs ``--count`` checks through ``run_probe`` with
``--concurrency`` checks in flight, and prints checks/s, checks per
CPU-second, CPU seconds per 1,000 checks (this process only) and the p50/p99
response time.

    python bench/probe_throughput.py [--kind http] [--count 20000] [--concurrency 100]
                                     [--keyword] [--close] [--uvloop]
    python bench/probe_throughput.py --kinds [--count 5000] [--uvloop]   # every kind, one line each

Kinds and their targets: ``http`` and ``tcp`` a tiny HTTP server; ``tls`` a
TLS server with a certificate made for the run (one handshake a check);
``dns`` a UDP responder (dnslib, a test dependency) answering an A record;
``ping`` 127.0.0.1 (one echo a check; needs root or unprivileged ICMP);
``postgres`` and ``redis`` the services of ``scripts/services`` (``SELECT 1``
and ``PING``, a new connection a check, as a monitor makes one), found through
``UPTIMED_DATABASE__DSN`` / ``UPTIMED_REDIS__URL`` or ``scripts/services env``.

``--keyword`` adds a keyword check (the body is read), ``--close`` makes the
server close every connection, as most real targets are checked on a fresh
connection (intervals are longer than keep-alive).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

BODY = b"<html><body>All systems operational</body></html>"
KINDS = ("http", "tcp", "tls", "dns", "ping", "postgres", "redis")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's uptimed, not the one installed (two checkouts are compared)


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
                self.transport.write(response * requests)  # type: ignore[attr-defined]
                if close:
                    self.transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_tls(cert: str, key: str) -> None:
    """The tls kind's target: complete each handshake, then hang up."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_dns() -> None:
    """The dns kind's target: every query answered with ``bench.test A 192.0.2.1``."""
    from dnslib import RR, DNSRecord

    answer = RR.fromZone("bench.test. 60 IN A 192.0.2.1")[0]

    class Dns(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            reply = DNSRecord.parse(data).reply()
            reply.add_answer(answer)
            self.transport.sendto(reply.pack(), addr)  # type: ignore[attr-defined]

    async def main() -> None:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Dns, local_addr=("127.0.0.1", 0))
        print(transport.get_extra_info("sockname")[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _certificate(folder: str) -> tuple[str, str, str]:
    """A self-signed certificate for localhost: (cert file, key file, PEM)."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with open(cert) as file:
        return cert, key, file.read()


def _service_env() -> dict[str, str]:
    """Where scripts/services runs PostgreSQL and Redis (the environment first)."""
    found = {k: v for k, v in os.environ.items() if k.startswith("UPTIMED_")}
    if "UPTIMED_DATABASE__DSN" in found and "UPTIMED_REDIS__URL" in found:
        return found
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "services"), "env", "--json"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return {**json.loads(out), **found}


def _monitors(kind: str, port: int, args: argparse.Namespace, extra: dict[str, str]) -> list[Any]:
    """1,000 monitors of ``kind`` checking the bench's target."""
    from uptimed.monitor import Monitor

    target, options = f"127.0.0.1:{port}", {}
    if kind == "http":
        target = f"http://127.0.0.1:{port}/"
        options = {"keyword": "All systems operational"} if args.keyword else {}
    elif kind == "tls":
        options = {"ca": extra["ca"], "server_name": "localhost", "expiry_days": 1}
    elif kind == "dns":
        target, options = "bench.test", {"server": f"127.0.0.1:{port}", "expected": ["192.0.2.1"]}
    elif kind == "ping":
        target, options = "127.0.0.1", {"count": 1}
    elif kind == "postgres":
        dsn = urlsplit(extra["dsn"])
        target = f"{dsn.hostname}:{dsn.port or 5432}"
        options = {"user": dsn.username or "postgres", "database": dsn.path.lstrip("/") or None}
        options |= {"query": "SELECT 1", "expected": "1", "tls": "disable"}
    elif kind == "redis":
        url = urlsplit(extra["redis"])
        target = f"{url.hostname}:{url.port or 6379}"
    fields = {"owner_id": 1, "kind": kind, "target": target, "interval": 60, "timeout": 10}
    return [
        Monitor.model_validate({**fields, "id": i, "name": f"m{i}", **({kind: options} if options else {})})
        for i in range(1000)
    ]


async def measure(port: int, args: argparse.Namespace, extra: dict[str, str]) -> dict[str, float]:
    from uptimed.probe.http import make_session
    from uptimed.probe.kinds import run_probe

    monitors = _monitors(args.kind, port, args, extra)
    session = make_session(limit=args.concurrency)
    times: list[float] = []
    failures: list[str] = []

    async def worker(jobs: itertools.count[int], count: int) -> None:
        for n in jobs:
            if n >= count:
                return
            result = await run_probe(monitors[n % len(monitors)], region="bench", session=session)
            if result.ok:
                times.append(result.response_time_ms or 0.0)
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
    cuts = statistics.quantiles(times, n=100) if len(times) > 1 else [0.0] * 99
    return {
        "checks_per_s": args.count / wall,
        "checks_per_cpu_s": args.count / cpu,
        "cpu_s_per_1000": cpu / args.count * 1000,
        "system_share": system / cpu,
        "p50_ms": cuts[49],
        "p99_ms": cuts[98],
        "failed": len(failures),
    }


def _server(*flags: str) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen([sys.executable, __file__, *flags], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, int(server.stdout.readline())


def run_kind(args: argparse.Namespace) -> dict[str, float]:
    """Measure ``args.kind`` against its own server (or service)."""
    extra: dict[str, str] = {}
    server: subprocess.Popen[str] | None = None
    port = 0
    with tempfile.TemporaryDirectory() as folder:
        if args.kind in ("http", "tcp"):
            server, port = _server("--serve", *(["--close"] if args.close or args.kind == "tcp" else []))
        elif args.kind == "tls":
            cert, key, extra["ca"] = _certificate(folder)
            server, port = _server("--serve-tls", cert, key)
        elif args.kind == "dns":
            server, port = _server("--serve-dns")
        elif args.kind in ("postgres", "redis"):
            env = _service_env()
            extra = {"dsn": env["UPTIMED_DATABASE__DSN"], "redis": env["UPTIMED_REDIS__URL"]}
        try:
            if args.uvloop:
                import uvloop

                return uvloop.run(measure(port, args, extra))
            return asyncio.run(measure(port, args, extra))
        finally:
            if server is not None:
                server.terminate()
                server.wait()


MODES = {"tcp": "connect", "tls": "handshake", "dns": "A over UDP", "ping": "one echo"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, default="http")
    parser.add_argument("--kinds", action="store_true", help="measure every kind, one line each")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--keyword", action="store_true", help="check a keyword, so every body is read")
    parser.add_argument("--close", action="store_true", help="a new connection for every check")
    parser.add_argument("--uvloop", action="store_true", help="measure on uvloop instead of asyncio's loop")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-tls", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve-dns", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.close)
        return
    if args.serve_tls:
        serve_tls(*args.serve_tls)
        return
    if args.serve_dns:
        serve_dns()
        return
    loop = "uvloop" if args.uvloop else "asyncio"
    for kind in KINDS if args.kinds else (args.kind,):
        args.kind = kind
        figures = run_kind(args)
        if kind == "http":
            mode = ("keyword" if args.keyword else "status") + (
                ", new connection each" if args.close else ", keep-alive"
            )
        else:
            mode = MODES.get(kind, "new connection each")
        print(
            f"{kind}: {args.count} checks ({mode}, {loop}, concurrency {args.concurrency}, pid {os.getpid()}): "
            f"{figures['checks_per_s']:,.0f} checks/s, {figures['checks_per_cpu_s']:,.0f} checks/CPU-s, "
            f"{figures['cpu_s_per_1000']:.3f} CPU s/1000 checks ({figures['system_share']:.0%} in the kernel), "
            f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, failed {figures['failed']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
