"""The ping kind against real hosts: 127.0.0.1 and ::1, and loopback in network namespaces this test makes.

A namespace of its own lets a test set what the kernel allows without
touching the machine: ``net.ipv4.ping_group_range`` (unprivileged ICMP
sockets), ``icmp_echo_ignore_all`` (a host that drops every echo request),
and, with ``setpriv``, a process without CAP_NET_RAW. Checks in a namespace
run in a child process (``ip netns exec``), which prints its result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.probe.conftest import make_monitor
from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.probe.kinds import run_probe
from uptimed.probe.ping import PingOptions

CHECK_IN_CHILD = """
import asyncio, json, sys
from uptimed.monitor import Monitor
from uptimed.probe.kinds import run_probe
monitor = Monitor.model_validate_json(sys.argv[1])
print(asyncio.run(run_probe(monitor, region="netns")).model_dump_json())
"""


def ping_monitor(target: str, *, timeout: float = 1.0, **options: Any) -> Any:
    return make_monitor(target, kind="ping", timeout=timeout, options={"count": 3, "interval": 0.05, **options})


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_loopback_answers_with_its_round_trip_time(address: str) -> None:
    result = await run_probe(ping_monitor(address), region="eu-west", scheduled_at_ms=1_000)

    assert result.status is CheckStatus.UP, result.error
    assert result.response_time_ms is not None and 0 < result.response_time_ms < 100
    assert result.message is not None
    assert result.message.startswith(f"3/3 replies from {address}, 0% loss, rtt min/avg/max ")
    assert (result.monitor_id, result.region, result.scheduled_at_ms) == (42, "eu-west", 1_000)


async def test_a_name_is_resolved_and_the_family_chosen() -> None:
    result = await run_probe(ping_monitor("localhost", family="ipv4"), region="eu-west")

    assert result.status is CheckStatus.UP, result.error
    assert result.message and "replies from localhost (127.0.0.1)" in result.message


async def test_a_name_that_does_not_resolve_is_a_dns_error() -> None:
    result = await run_probe(ping_monitor("no-such-host.invalid"), region="eu-west")

    assert result.status is CheckStatus.DOWN and result.error_class is ErrorClass.DNS
    assert result.error and result.error.startswith("cannot resolve no-such-host.invalid")


def test_the_options_and_target_are_checked() -> None:
    with pytest.raises(ValueError, match="less than or equal to 20"):
        PingOptions(count=21)
    with pytest.raises(ValueError, match="a ping monitor needs a host name or an IP address"):
        make_monitor("https://example.com/", kind="ping")


@pytest.fixture
def namespace() -> Iterator[Callable[..., CheckResult]]:
    """``check(monitor, sysctls={...}, without_net_raw=False)`` in a fresh network namespace with only loopback."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("making a network namespace needs root and iproute2's ip")
    name = f"uptimed-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this machine refuses network namespaces: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)

        def check(monitor: Any, *, sysctls: dict[str, str] | None = None, without_net_raw: bool = False) -> CheckResult:
            for key, value in (sysctls or {}).items():
                subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", f"{key}={value}"], check=True)
            drop = ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"] if without_net_raw else []
            done = subprocess.run(
                ["ip", "netns", "exec", name, *drop, sys.executable, "-c", CHECK_IN_CHILD, monitor.model_dump_json()],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return CheckResult.model_validate(json.loads(done.stdout.strip().splitlines()[-1]))

        yield check
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


DROP_ECHOES = {"net.ipv4.icmp_echo_ignore_all": "1", "net.ipv6.icmp.echo_ignore_all": "1"}


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_a_host_that_drops_every_echo_is_down_with_the_loss(
    namespace: Callable[..., CheckResult], address: str
) -> None:
    result = namespace(ping_monitor(address, timeout=0.6), sysctls=DROP_ECHOES)

    assert result.status is CheckStatus.DOWN and result.error_class is ErrorClass.LOSS
    assert result.error == "100% packet loss (no reply within 0.5 s)"
    assert result.message == f"0/3 replies from {address}, 100% loss"
    assert result.response_time_ms is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_unprivileged_datagram_sockets_where_the_kernel_allows_them(
    namespace: Callable[..., CheckResult], address: str
) -> None:
    result = namespace(
        ping_monitor(address), sysctls={"net.ipv4.ping_group_range": "0 2147483647"}, without_net_raw=True
    )

    assert result.status is CheckStatus.UP, result.error


def test_a_clear_error_when_neither_socket_is_allowed(namespace: Callable[..., CheckResult]) -> None:
    result = namespace(ping_monitor("127.0.0.1"), sysctls={"net.ipv4.ping_group_range": "1 0"}, without_net_raw=True)

    assert result.status is CheckStatus.DOWN and result.error_class is ErrorClass.OTHER
    assert result.error == (
        "cannot send ICMP echoes: unprivileged ICMP sockets are off for group 0 (sysctl net.ipv4.ping_group_range)"
        " and uptimed may not open raw sockets (needs root or CAP_NET_RAW)"
    )
