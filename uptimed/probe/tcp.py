"""The ``tcp`` probe: can a connection to ``host:port`` be opened within the timeout?"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time

import aiohttp

from uptimed.check import CheckResult, CheckStatus, ErrorClass, now_ms
from uptimed.monitor import Monitor


async def check_tcp(
    monitor: Monitor,
    *,
    region: str,
    session: aiohttp.ClientSession | None = None,
    scheduled_at_ms: int | None = None,
) -> CheckResult:
    """Open a TCP connection to the monitor's ``host:port`` and close it at once.

    ``response_time_ms`` is the time to connect, name resolution included.
    ``session`` is unused; it is accepted so every kind has the same signature.
    """
    host, _, port = monitor.target.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # "[::1]:443"
    checked_at_ms = now_ms()
    started = time.perf_counter()
    error_class: ErrorClass | None = None
    try:
        async with asyncio.timeout(monitor.timeout):
            _, writer = await asyncio.open_connection(host, int(port))
    except TimeoutError:
        error_class, error = ErrorClass.TIMEOUT, f"no connection within {monitor.timeout:g} s"
    except socket.gaierror as exc:
        error_class, error = ErrorClass.DNS, f"cannot resolve {host}: {exc.strerror or exc}"
    except OSError as exc:
        error_class, error = ErrorClass.CONNECT, f"cannot connect to {host}:{port}: {describe_os_error(exc)}"
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    if error_class is not None:
        return CheckResult(
            monitor_id=monitor.id,
            region=region,
            status=CheckStatus.DOWN,
            error_class=error_class,
            error=error,
            checked_at_ms=checked_at_ms,
            scheduled_at_ms=scheduled_at_ms,
        )
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass  # the peer may reset a connection we never used; the check already passed
    return CheckResult(
        monitor_id=monitor.id,
        region=region,
        status=CheckStatus.UP,
        response_time_ms=elapsed_ms,
        checked_at_ms=checked_at_ms,
        scheduled_at_ms=scheduled_at_ms,
    )


def describe_os_error(exc: OSError) -> str:
    """A short, lower-case reason for a failed connect, without addresses or URLs."""
    if exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    # asyncio joins the errors of several addresses into one message without an errno.
    return str(exc) or type(exc).__name__
