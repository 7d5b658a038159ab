"""The tcp probe against real local sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from uptimed.check import CheckResult, CheckStatus, ErrorClass

Check = Callable[..., Awaitable[CheckResult]]


async def test_an_open_port_is_up_with_its_connect_time(check: Check, tcp_server: tuple[int, asyncio.Queue]) -> None:
    port, _ = tcp_server
    result = await check(f"127.0.0.1:{port}", kind="tcp")

    assert result.status is CheckStatus.UP
    assert result.response_time_ms is not None and 0 < result.response_time_ms < 1000
    assert result.status_code is None and result.error is None
    assert (result.monitor_id, result.region, result.scheduled_at_ms) == (42, "eu-west", 1_000)


async def test_the_connection_is_closed_at_once_without_sending_anything(
    check: Check, tcp_server: tuple[int, asyncio.Queue]
) -> None:
    port, received = tcp_server
    await check(f"127.0.0.1:{port}", kind="tcp")

    # The server reads until EOF: it only gets there if the probe hung up.
    assert await asyncio.wait_for(received.get(), 2.0) == b""


async def test_a_refused_port_is_a_connect_failure(check: Check, closed_port: int) -> None:
    result = await check(f"127.0.0.1:{closed_port}", kind="tcp")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.CONNECT
    assert "connection refused" in result.error


async def test_an_unresolvable_host_is_a_dns_failure(check: Check) -> None:
    result = await check("no-such-host.invalid:443", kind="tcp")

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.DNS
    assert "no-such-host.invalid" in result.error


async def test_a_port_that_never_answers_times_out_within_the_timeout(check: Check, hanging_port: int) -> None:
    started = time.perf_counter()
    result = await check(f"127.0.0.1:{hanging_port}", kind="tcp", timeout=0.2)
    elapsed = time.perf_counter() - started

    assert result.status is CheckStatus.DOWN
    assert result.error_class is ErrorClass.TIMEOUT
    assert "0.2 s" in result.error
    assert 0.2 <= elapsed < 1.0
