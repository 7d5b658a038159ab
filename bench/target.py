"""The benchmarks' probe target: a minimal keep-alive HTTP/1.1 server, as fast as one process allows.

Every request gets the same 200 page. With ``counting`` it also keeps what a
benchmark of the whole daemon needs to know from outside it: how many
requests arrived, when the first did, and how many distinct paths (monitors)
were checked; ``GET /__stats`` answers them as JSON (not counted).

    python bench/target.py [--close] [--counting]   # prints its port, then serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

BODY = b"<html><body>All systems operational</body></html>"


def serve(close: bool = False, counting: bool = False) -> None:
    import uvloop

    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n" % len(BODY)
    response = head + (b"Connection: close\r\n" if close else b"") + b"\r\n" + BODY
    stats = {"requests": 0, "first": None, "paths": set()}

    def stats_response() -> bytes:
        body = json.dumps(
            {"requests": stats["requests"], "first": stats["first"], "distinct": len(stats["paths"])}  # type: ignore[arg-type]
        ).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            if not counting:
                requests = self.buffer.count(b"\r\n\r\n")
                if requests:
                    self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
                    self.transport.write(response * requests)  # type: ignore[attr-defined]
                    if close:
                        self.transport.close()
                return
            *complete, self.buffer = self.buffer.split(b"\r\n\r\n")
            out = []
            for request in complete:
                path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
                if path == b"/__stats":
                    out.append(stats_response())
                    continue
                if stats["first"] is None:
                    stats["first"] = time.time()
                stats["requests"] += 1  # type: ignore[operator]
                stats["paths"].add(path)  # type: ignore[attr-defined]
                out.append(response)
            if out:
                self.transport.write(b"".join(out))  # type: ignore[attr-defined]
                if close:
                    self.transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--close", action="store_true", help="close the connection after each answer")
    parser.add_argument("--counting", action="store_true", help="count requests and paths, answer /__stats")
    args = parser.parse_args()
    serve(args.close, args.counting)
