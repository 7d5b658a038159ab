"""The dns kind against a DNS server this test starts on 127.0.0.1 (dnslib, UDP and TCP on one port).

The zone: ``shop.test`` with a record of every kind the monitor asks for;
``gone.test`` does not exist (NXDOMAIN); ``broken.test`` makes the server
fail (SERVFAIL); ``big.test`` comes back truncated over UDP and whole over
TCP. A second server takes queries and never answers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

from tests.probe.conftest import make_monitor
from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.monitor import MonitorFields
from uptimed.probe.kinds import run_probe

ZONE = """
shop.test.      60 IN A     192.0.2.10
shop.test.      60 IN A     192.0.2.11
shop.test.      60 IN AAAA  2001:db8::10
www.shop.test.  60 IN CNAME shop.test.
shop.test.      60 IN MX    10 mail.shop.test.
shop.test.      60 IN MX    20 backup.shop.test.
shop.test.      60 IN TXT   "v=spf1 -all"
shop.test.      60 IN NS    ns1.shop.test.
shop.test.      60 IN SOA   ns1.shop.test. hostmaster.shop.test. 2026112701 7200 3600 1209600 300
shop.test.      60 IN CAA   0 issue "letsencrypt.org"
"""
BIG = [f"big.test. 60 IN A 198.51.100.{n}" for n in range(1, 61)]


@dataclass
class Zone(BaseResolver):  # type: ignore[misc]
    """Answers from ``ZONE``; remembers each query's name, type and transport."""

    records: list[RR] = field(default_factory=lambda: RR.fromZone(ZONE) + RR.fromZone("\n".join(BIG)))
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        name, qtype = str(request.q.qname), QTYPE[request.q.qtype]
        self.asked.append((name, qtype, handler.protocol))
        reply = request.reply()
        if name == "broken.test.":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if name == "big.test." and handler.protocol == "udp":
            reply.header.tc = 1  # too large for a datagram: ask again over TCP
            return reply
        found = [rr for rr in self.records if str(rr.rname) == name]
        if not found:
            reply.header.rcode = RCODE.NXDOMAIN
        for rr in found:
            if QTYPE[rr.rtype] == qtype or QTYPE[rr.rtype] == "CNAME":
                reply.add_answer(rr)
        return reply


@dataclass
class Servers:
    zone: Zone
    port: int
    silent_port: int


def _free_port_for_both() -> int:
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


@pytest.fixture(scope="module")
def dns_servers() -> Iterator[Servers]:
    zone = Zone()
    port = _free_port_for_both()
    servers = [DNSServer(zone, address="127.0.0.1", port=port, tcp=tcp) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes queries, never reads them
    silent.bind(("127.0.0.1", 0))
    try:
        yield Servers(zone, port, silent.getsockname()[1])
    finally:
        for server in servers:
            server.stop()
        silent.close()


async def dns_check(servers: Servers, name: str, *, timeout: float = 2.0, **options: Any) -> CheckResult:
    server = options.pop("server", f"127.0.0.1:{servers.port}")
    monitor = make_monitor(name, kind="dns", timeout=timeout, options={"server": server, **options})
    return await run_probe(monitor, region="eu-west")


@pytest.mark.parametrize(
    ("record", "expected", "shown"),
    [
        ("A", ["192.0.2.11"], "A 192.0.2.10, 192.0.2.11"),
        ("AAAA", ["2001:0db8:0000::10"], "AAAA 2001:db8::10"),
        ("MX", ["mail.shop.test"], "MX 10 mail.shop.test, 20 backup.shop.test"),
        ("MX", ["20 BACKUP.shop.test."], "MX 10 mail.shop.test, 20 backup.shop.test"),
        ("TXT", ["v=spf1 -all"], "TXT v=spf1 -all"),
        ("NS", ["ns1.shop.test"], "NS ns1.shop.test"),
        ("SOA", ["ns1.shop.test"], "SOA ns1.shop.test hostmaster.shop.test 2026112701 7200 3600 1209600 300"),
        ("CAA", ['0 issue "letsencrypt.org"'], "CAA 0 issue letsencrypt.org"),
    ],
)
async def test_an_expected_value_of_each_record_type(
    dns_servers: Servers, record: str, expected: list[str], shown: str
) -> None:
    result = await dns_check(dns_servers, "shop.test", record=record, expected=expected)

    assert result.status is CheckStatus.UP, result.error
    assert result.message == shown
    assert result.response_time_ms is not None and result.response_time_ms > 0


async def test_a_cname_is_followed_and_named(dns_servers: Servers) -> None:
    result = await dns_check(dns_servers, "www.shop.test", record="CNAME", expected=["shop.test."])
    assert result.status is CheckStatus.UP, result.error


async def test_any_or_all_of_the_expected_values(dns_servers: Servers) -> None:
    some = ["192.0.2.10", "192.0.2.99"]
    assert (await dns_check(dns_servers, "shop.test", expected=some)).status is CheckStatus.UP
    every = await dns_check(dns_servers, "shop.test", expected=some, match="all")
    assert every.status is CheckStatus.DOWN and every.error_class is ErrorClass.ANSWER
    assert every.error == "expected all of 192.0.2.99, got 192.0.2.10, 192.0.2.11"
    both = await dns_check(dns_servers, "shop.test", expected=["192.0.2.10", "192.0.2.11"], match="all")
    assert both.status is CheckStatus.UP


async def test_a_wrong_value_is_down_with_what_came_back(dns_servers: Servers) -> None:
    result = await dns_check(dns_servers, "shop.test", expected=["203.0.113.7"])

    assert result.status is CheckStatus.DOWN and result.error_class is ErrorClass.ANSWER
    assert result.error == "expected 203.0.113.7, got 192.0.2.10, 192.0.2.11"
    assert result.message == "A 192.0.2.10, 192.0.2.11"


async def test_without_expected_values_any_answer_is_up_and_none_is_down(dns_servers: Servers) -> None:
    assert (await dns_check(dns_servers, "shop.test", record="TXT")).status is CheckStatus.UP
    empty = await dns_check(dns_servers, "www.shop.test", record="TXT")  # exists, but holds no TXT record
    assert empty.status is CheckStatus.DOWN and empty.error_class is ErrorClass.ANSWER
    assert empty.error == f"www.shop.test has no TXT record from 127.0.0.1:{dns_servers.port}"


async def test_nxdomain_servfail_and_timeout_are_distinct(dns_servers: Servers) -> None:
    gone = await dns_check(dns_servers, "gone.test")
    broken = await dns_check(dns_servers, "broken.test")
    silent = await dns_check(dns_servers, "shop.test", server=f"127.0.0.1:{dns_servers.silent_port}", timeout=0.5)

    assert (gone.error_class, gone.error) == (
        ErrorClass.NXDOMAIN,
        f"gone.test does not exist (NXDOMAIN from 127.0.0.1:{dns_servers.port})",
    )
    assert broken.error_class is ErrorClass.SERVFAIL
    assert broken.error == f"no server could answer for broken.test: SERVFAIL from 127.0.0.1:{dns_servers.port}"
    assert silent.error_class is ErrorClass.TIMEOUT
    assert silent.error == f"no answer for shop.test from 127.0.0.1:{dns_servers.silent_port} within 0.5 s"
    assert {r.status for r in (gone, broken, silent)} == {CheckStatus.DOWN}


async def test_a_truncated_udp_answer_is_asked_again_over_tcp(dns_servers: Servers) -> None:
    result = await dns_check(dns_servers, "big.test", expected=["198.51.100.60"])

    assert result.status is CheckStatus.UP, result.error
    assert result.message is not None and result.message.endswith("(+55 more)")
    asked = [transport for name, _, transport in dns_servers.zone.asked if name == "big.test."]
    assert asked[-2:] == ["udp", "tcp"]


def test_the_target_and_server_are_checked() -> None:
    with pytest.raises(ValueError, match="a dns monitor needs a domain name"):
        MonitorFields(name="dns", kind="dns", target="https://shop.test/")
    with pytest.raises(ValueError, match=r"dns\.server\n.*the port must be a number"):
        MonitorFields.model_validate(
            {"name": "dns", "kind": "dns", "target": "shop.test", "dns": {"server": "127.0.0.1:99999"}}
        )
