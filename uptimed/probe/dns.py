"""The ``dns`` kind: resolve a name and judge the answer (dnspython's asyncio resolver).

Queries go over UDP and are repeated over TCP when the answer comes back
truncated. A name that does not exist (NXDOMAIN), a server that cannot answer
(SERVFAIL, REFUSED), no answer in time and an answer without the expected
values are distinct errors.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from uptimed.check import CheckResult, ErrorClass
from uptimed.monitor import Monitor
from uptimed.probe.base import CheckContext, host_port_problem, split_host_port

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.resolver

# dnspython is imported by the first check that needs it, not with the kinds: it costs a daemon
# that checks no DNS a tenth of a second at every start.

DNS_PORT = 53
RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "CAA"]

_MAX_SHOWN = 5


class DnsOptions(BaseModel):
    """Options of a ``dns`` monitor."""

    model_config = ConfigDict(extra="forbid")

    record: RecordType = Field("A", description="the record type to ask for")
    server: str | None = Field(
        None, max_length=300, description="host[:port] of the DNS server to ask; empty: the system's resolver"
    )
    expected: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="values the answer must hold (an address, a name, '10 mail.example.com', TXT text); empty: any answer",
    )
    match: Literal["any", "all"] = Field("any", description="whether any or all of the expected values must be there")

    @field_validator("server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None and (problem := host_port_problem(value, DNS_PORT)):
            raise ValueError(problem)
        return value

    @field_validator("expected")
    @classmethod
    def _expected(cls, value: list[str]) -> list[str]:
        return [item.strip() for item in value if item.strip()]


class DnsKind:
    """``dns``: a query for one record type of a name."""

    name = "dns"
    title = "DNS"
    config_model = DnsOptions
    target_help = "the name to resolve: www.example.com"

    def target_problem(self, target: str) -> str | None:
        import dns.exception
        import dns.name

        text = target.strip()
        if not text or any(c.isspace() or c in "/:?#@" for c in text):
            return "a dns monitor needs a domain name"
        try:
            dns.name.from_text(text)
        except dns.exception.DNSException as exc:
            return f"not a domain name: {exc}"
        return None

    async def check(self, monitor: Monitor, options: DnsOptions, context: CheckContext) -> CheckResult:
        import dns.exception
        import dns.resolver

        name = monitor.target.strip()
        resolver = await _resolver(options, context, monitor.timeout)
        where = f" from {options.server}" if options.server else ""
        try:
            answer = await resolver.resolve(name, options.record, search=False, raise_on_no_answer=True)
        except dns.resolver.NXDOMAIN:
            return context.down(ErrorClass.NXDOMAIN, f"{name} does not exist (NXDOMAIN{where})")
        except dns.resolver.NoAnswer:
            return context.down(ErrorClass.ANSWER, f"{name} has no {options.record} record{where}")
        except dns.resolver.NoNameservers as exc:
            return context.down(ErrorClass.SERVFAIL, f"no server could answer for {name}: {_rcodes(exc)}")
        except dns.exception.Timeout:
            return context.down(ErrorClass.TIMEOUT, f"no answer for {name}{where} within {monitor.timeout:g} s")
        except dns.exception.DNSException as exc:
            return context.down(ErrorClass.DNS, f"query for {name} failed: {exc}")
        elapsed_ms = context.elapsed_ms()
        found = [_text(options.record, rdata) for rdata in answer]
        shown = ", ".join(found[:_MAX_SHOWN]) + (
            f" (+{len(found) - _MAX_SHOWN} more)" if len(found) > _MAX_SHOWN else ""
        )
        message = f"{options.record} {shown}"
        missing = [value for value in options.expected if not _holds(options.record, found, value)]
        wanted = len(options.expected) if options.match == "all" else min(1, len(options.expected))
        if len(options.expected) - len(missing) < wanted:
            expected = ", ".join(missing if options.match == "all" else options.expected)
            either = "all of" if options.match == "all" and len(options.expected) > 1 else "one of"
            expected = expected if len(options.expected) == 1 else f"{either} {expected}"
            return context.down(
                ErrorClass.ANSWER, f"expected {expected}, got {shown}", response_time_ms=elapsed_ms, message=message
            )
        return context.up(response_time_ms=elapsed_ms, message=message)


async def _resolver(options: DnsOptions, context: CheckContext, timeout: float) -> dns.asyncresolver.Resolver:
    if options.server is None:
        return _configured(None, DNS_PORT, timeout)
    host, port = split_host_port(options.server, DNS_PORT)
    return _configured((await context.addresses(host, port))[0], port, timeout)


@functools.lru_cache(maxsize=1024)
def _configured(address: str | None, port: int, timeout: float) -> dns.asyncresolver.Resolver:
    """A resolver asking ``address`` (None: the system's, from /etc/resolv.conf), kept for the next checks.

    Resolvers hold no state between queries (no cache here): making one, and
    reading resolv.conf, cost more than the query itself.
    """
    import dns.asyncresolver

    resolver = dns.asyncresolver.Resolver(configure=address is None)
    if address is not None:
        resolver.nameservers = [address]
        resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = timeout
    resolver.cache = None
    return resolver


def _rcodes(exc: dns.resolver.NoNameservers) -> str:
    """``"SERVFAIL from 127.0.0.1:5353"`` for each server that answered so."""
    import dns.rcode

    said: list[str] = []
    for error in exc.kwargs.get("errors", []):
        server, _tcp, port, problem, response = (list(error) + [None] * 5)[:5]
        what = dns.rcode.to_text(response.rcode()) if response is not None else str(problem)
        address = str(getattr(server, "address", server))
        if address.startswith("Do53:"):  # dnspython 2.6+ names the server "Do53:<address>@<port>"
            address = address.removeprefix("Do53:").rsplit("@", 1)[0]
        said.append(f"{what} from {address}:{port}")
    return "; ".join(dict.fromkeys(said)) or "every server failed"


def _text(record: str, rdata: Any) -> str:
    """An answer's value as people write it: ``192.0.2.1``, ``mail.example.com``, ``10 mail.example.com``."""
    if record == "TXT":
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    text: str = rdata.to_text()
    return text.replace('"', "").rstrip(".").replace(". ", " ")


def _holds(record: str, found: list[str], expected: str) -> bool:
    """Whether the answer holds ``expected``: an address of any spelling, a name in any case, with or without its dot."""
    if record in ("A", "AAAA"):
        try:
            wanted = ipaddress.ip_address(expected)
        except ValueError:
            return False
        return any(_same_address(wanted, value) for value in found)
    if record == "TXT":
        return expected in found
    wanted_text = expected.replace('"', "").rstrip(".").lower()
    for value in found:
        text = value.lower()
        # MX and SOA also match by their main name alone: "mail.example.com" for "10 mail.example.com".
        if text == wanted_text or (record in ("MX", "SOA") and wanted_text in text.split()):
            return True
    return False


def _same_address(wanted: ipaddress.IPv4Address | ipaddress.IPv6Address, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) == wanted
    except ValueError:
        return False
