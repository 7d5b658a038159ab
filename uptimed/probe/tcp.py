"""The ``tcp`` kind: can a connection to ``host:port`` be opened within the timeout?"""

from __future__ import annotations

import asyncio
import errno
import os
import socket

from pydantic import BaseModel, ConfigDict

from uptimed.check import CheckResult, ErrorClass
from uptimed.monitor import Monitor
from uptimed.probe.base import CheckContext, host_port_problem, split_host_port


class TcpOptions(BaseModel):
    """A tcp monitor has no options: its target says it all."""

    model_config = ConfigDict(extra="forbid")


class TcpKind:
    """``tcp``: open a connection to ``host:port`` and close it at once."""

    name = "tcp"
    title = "TCP"
    config_model = TcpOptions
    target_help = "host:port to connect to: db.internal:5432"

    def target_problem(self, target: str) -> str | None:
        problem = host_port_problem(target)
        return f"a tcp monitor needs host:port ({problem})" if problem else None

    async def check(self, monitor: Monitor, options: TcpOptions, context: CheckContext) -> CheckResult:
        """``response_time_ms`` is the time to connect, name resolution included."""
        host, port = split_host_port(monitor.target)
        try:
            async with asyncio.timeout(monitor.timeout):
                writer = await open_connection(context, host, port)
        except TimeoutError:
            return context.down(ErrorClass.TIMEOUT, f"no connection within {monitor.timeout:g} s")
        except socket.gaierror as exc:
            return context.down(ErrorClass.DNS, f"cannot resolve {host}: {exc.strerror or exc}")
        except OSError as exc:
            return context.down(ErrorClass.CONNECT, f"cannot connect to {host}:{port}: {describe_os_error(exc)}")
        elapsed_ms = context.elapsed_ms()
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the peer may reset a connection we never used; the check already passed
        return context.up(response_time_ms=elapsed_ms)


async def open_connection(context: CheckContext, host: str, port: int) -> asyncio.StreamWriter:
    """A connection to the first of ``host``'s allowed addresses that accepts one (each tried in turn)."""
    last: OSError | None = None
    for address in await context.addresses(host, port):
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError as exc:
            last = exc
            continue
        return writer
    raise last or OSError(errno.EHOSTUNREACH, f"{host} has no address")


def describe_os_error(exc: OSError) -> str:
    """A short, lower-case reason for a failed connect, without addresses or URLs."""
    if exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    # asyncio joins the errors of several addresses into one message without an errno.
    return str(exc) or type(exc).__name__
