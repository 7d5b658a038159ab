"""The ``ping`` kind: ICMP echo requests to a host (IPv4 or IPv6), judged by how many are answered.

Sockets: an unprivileged ICMP datagram socket where the kernel allows one
(Linux: ``net.ipv4.ping_group_range`` covers the process's group; the kernel
then matches replies to their socket), else a raw socket (root or
CAP_NET_RAW). Which one works is found once per address family; when neither
does, every check says so, with what to change. Packets are built and parsed
by icmplib.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import re
import socket
from enum import StrEnum
from typing import Literal

import structlog
from icmplib import ICMPRequest
from icmplib.exceptions import ICMPLibError, TimeoutExceeded
from icmplib.sockets import AsyncSocket, ICMPv4Socket, ICMPv6Socket
from icmplib.utils import unique_identifier
from pydantic import BaseModel, ConfigDict, Field

from uptimed.check import CheckResult, ErrorClass
from uptimed.monitor import Monitor
from uptimed.probe.base import CheckContext

log = structlog.get_logger()

MIN_ECHO_TIMEOUT_S = 0.1


class SocketMode(StrEnum):
    DATAGRAM = "datagram"
    """Unprivileged ICMP socket (SOCK_DGRAM, IPPROTO_ICMP): the kernel fills in ids and checksums."""
    RAW = "raw"
    """Raw socket: root or CAP_NET_RAW."""


class PingOptions(BaseModel):
    """Options of a ``ping`` monitor."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(3, ge=1, le=20, description="echo requests per check")
    interval: float = Field(0.2, ge=0.01, le=5, description="seconds between echo requests")
    loss_threshold: float = Field(
        50, gt=0, le=100, description="down when at least this percent of the echo requests go unanswered"
    )
    family: Literal["any", "ipv4", "ipv6"] = Field("any", description="which address of a name to ping")


class IcmpUnavailable(Exception):
    """This process can open neither kind of ICMP socket."""


@functools.cache
def socket_mode(family: int) -> SocketMode | None:
    """The ICMP socket this process can open for ``family`` (found once), or None for neither."""
    protocol = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    for mode, kind in ((SocketMode.DATAGRAM, socket.SOCK_DGRAM), (SocketMode.RAW, socket.SOCK_RAW)):
        try:
            socket.socket(family, kind, protocol).close()
        except OSError:
            continue
        log.info("ping.sockets", family="ipv4" if family == socket.AF_INET else "ipv6", mode=mode.value)
        return mode
    return None


def _unavailable(family: int) -> str:
    return (
        f"cannot send ICMP{'v6' if family == socket.AF_INET6 else ''} echoes: unprivileged ICMP sockets are off "
        f"for group {os.getgid()} (sysctl net.ipv4.ping_group_range) and uptimed may not open raw sockets "
        "(needs root or CAP_NET_RAW)"
    )


class PingKind:
    """``ping``: ICMP echo; up while loss stays below the threshold, response time the average round trip."""

    name = "ping"
    title = "Ping (ICMP)"
    config_model = PingOptions
    target_help = "a host name or IP address: gateway.example.com, 192.0.2.1, 2001:db8::1"

    def target_problem(self, target: str) -> str | None:
        text = target.strip().strip("[]")
        if _is_ip(text) or re.fullmatch(r"[A-Za-z0-9_.-]{1,253}", text):
            return None
        return "a ping monitor needs a host name or an IP address"

    async def check(self, monitor: Monitor, options: PingOptions, context: CheckContext) -> CheckResult:
        host = monitor.target.strip().strip("[]")
        try:
            async with asyncio.timeout(monitor.timeout):
                address = await _address(context, host, options.family)
        except TimeoutError:
            return context.down(ErrorClass.DNS, f"cannot resolve {host} within {monitor.timeout:g} s")
        except socket.gaierror as exc:
            return context.down(ErrorClass.DNS, f"cannot resolve {host}: {exc.strerror or exc}")
        except LookupError as exc:
            return context.down(ErrorClass.DNS, str(exc))
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        mode = socket_mode(family)
        if mode is None:
            return context.down(ErrorClass.OTHER, _unavailable(family))
        # The last echo must be answered within the monitor's timeout.
        echo_timeout = max(MIN_ECHO_TIMEOUT_S, monitor.timeout - (options.count - 1) * options.interval)
        rtts, problem = await _echoes(address, family, mode, options, echo_timeout)
        lost = options.count - len(rtts)
        loss = 100.0 * lost / options.count
        where = host if host == address else f"{host} ({address})"
        summary = f"{len(rtts)}/{options.count} replies from {where}, {loss:.0f}% loss"
        if rtts:
            summary += f", rtt min/avg/max {min(rtts):.2f}/{sum(rtts) / len(rtts):.2f}/{max(rtts):.2f} ms"
        average = sum(rtts) / len(rtts) if rtts else None
        if loss >= options.loss_threshold:
            why = f" ({problem})" if problem else ""
            return context.down(
                ErrorClass.LOSS, f"{loss:.0f}% packet loss{why}", response_time_ms=average, message=summary
            )
        return context.up(response_time_ms=average, message=summary)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def _address(context: CheckContext, host: str, family: str) -> str:
    """The address to ping: ``host`` itself when it is one, else its first (allowed) address of ``family``."""
    found = await context.addresses(host, 0)
    wanted = [a for a in found if family == "any" or (":" in a) == (family == "ipv6")]
    if not wanted:
        raise LookupError(f"{host} has no {family.replace('ip', 'IP')} address")
    return wanted[0]


async def _echoes(
    address: str, family: int, mode: SocketMode, options: PingOptions, echo_timeout: float
) -> tuple[list[float], str | None]:
    """Round-trip times of the answered echoes (ms), and why the last unanswered one was lost."""
    kind = ICMPv6Socket if family == socket.AF_INET6 else ICMPv4Socket
    rtts: list[float] = []
    problem: str | None = None
    identifier = unique_identifier()  # a raw socket sees every reply: this one's are told by it
    with AsyncSocket(kind(None, mode is SocketMode.RAW)) as sock:
        for sequence in range(options.count):
            if sequence:
                await asyncio.sleep(options.interval)
            request = ICMPRequest(destination=address, id=identifier, sequence=sequence)
            try:
                sock.send(request)
                reply = await sock.receive(request, echo_timeout)
                reply.raise_for_status()
            except TimeoutExceeded:
                problem = f"no reply within {echo_timeout:g} s"
                continue
            except ICMPLibError as exc:
                problem = str(exc).rstrip(".").lower() or type(exc).__name__
                continue
            rtts.append((reply.time - request.time) * 1000.0)
    return rtts, problem
