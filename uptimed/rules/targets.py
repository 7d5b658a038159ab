"""What uptimed may connect to on a user's behalf: the target policy.

A monitor or an integration made through the API or the pages belongs to a
user the operator may not trust, and uptimed connects to its target from
inside the operator's network. So by default such a target may not be on a
loopback, link-local (cloud metadata), private, carrier-grade NAT, multicast,
unspecified or reserved address, nor be one of uptimed's own services
(PostgreSQL, Redis, Kafka, the API). ``[security] allow_networks`` opens
networks, ``allow_all_networks`` opens every network (a single-team install);
uptimed's own services stay closed either way. Monitors and integrations
declared in the config file are the operator's own: :data:`TRUSTED`.

The rules are data (:data:`RULES`) and one check (:meth:`TargetPolicy.refusal`),
applied to the address actually connected to, after DNS and on every
redirect: the probes' aiohttp session (``uptimed.probe.http.make_session``),
the deliveries' httpx transport (``uptimed.channels.http.delivery_client``),
and any monitor kind that connects by itself, which resolves with
:meth:`TargetPolicy.resolve` and connects only to the addresses it returns.
The API and the pages also check a target when it is saved
(:func:`problems_of_url`), so a refusal shows at once, naming the setting.

Imports no store, channel or web code: config.py may use it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from uptimed.rules.errors import Loc, Problem

if TYPE_CHECKING:
    from uptimed.config import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "[security] allow_networks"
"""The setting that opens a network, as every refusal names it."""

RESOLVE_TIMEOUT_S = 3.0
"""How long saving a target may wait for DNS; a name that does not resolve yet is checked at connect time."""


@dataclass(frozen=True)
class Rule:
    """Addresses refused by default: a name for people and the networks it covers."""

    name: str
    networks: tuple[Network, ...]


def _rule(name: str, *networks: str) -> Rule:
    return Rule(name, tuple(ipaddress.ip_network(n) for n in networks))


RULES: tuple[Rule, ...] = (
    _rule("an unspecified address", "0.0.0.0/8", "::/128"),
    _rule("a loopback address", "127.0.0.0/8", "::1/128"),
    _rule("a link-local address (cloud metadata lives there)", "169.254.0.0/16", "fe80::/10"),
    _rule("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10"),
    _rule("a carrier-grade NAT address", "100.64.0.0/10"),
    _rule("a multicast address", "224.0.0.0/4", "ff00::/8"),
    _rule(
        "a reserved address",
        "192.0.0.0/24",
        "198.18.0.0/15",
        "240.0.0.0/4",
        "::/96",
        "100::/64",
        "2001::/32",
        "2001:10::/28",
    ),
)
"""Refused unless ``allow_networks`` (or ``allow_all_networks``) opens them, in this order."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


@dataclass(frozen=True)
class OwnService:
    """An address of one of uptimed's own services; ``port`` None: every port of it."""

    name: str
    address: Address
    port: int | None


class TargetRefused(PermissionError):
    """The target policy refuses this address. An ``OSError``, so connection code treats it as a failed connect.

    ``str()`` is the sentence users see: the address, the rule and the setting.
    """

    def __init__(self, address: str, port: int | None, reason: str, *, own_service: bool = False) -> None:
        self.address = address
        self.port = port
        self.reason = reason
        self.own_service = own_service
        where = address if port is None else _host_port(address, port)
        if own_service:
            message = (
                f"refused by the target policy: {where} is {reason}; monitors and integrations made through the "
                "API or the pages never reach it (declare it in the config file instead)"
            )
        else:
            message = f"refused by the target policy: {where} is {reason}; allow it with {SETTING}"
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), which is where it really leads."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def parse_address(text: str) -> Address | None:
    """An IP address written in text (brackets and a zone index allowed), or None when it is not one."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class TargetPolicy:
    """Which addresses a user's monitors and integrations may connect to.

    :meth:`check` (or :meth:`refusal`) an address before connecting to it;
    :meth:`resolve` a host name and connect only to what it returns.
    """

    enforced: bool = True
    """False for :data:`TRUSTED`: everything is allowed."""
    allow_networks: tuple[Network, ...] = ()
    allow_all_networks: bool = False
    own_services: tuple[OwnService, ...] = field(default=())

    def refusal(self, address: str | Address, port: int | None = None) -> TargetRefused | None:
        """Why connecting to ``address`` (on ``port``) is refused, or None when it is allowed."""
        if not self.enforced:
            return None
        ip = parse_address(address) if isinstance(address, str) else address
        if ip is None:
            return TargetRefused(str(address), port, "not an IP address")
        text = str(ip)
        candidates = [ip] + ([inner] if (inner := embedded_ipv4(ip)) is not None else [])
        for candidate in candidates:
            for own in self.own_services:
                if candidate == own.address and (own.port is None or port is None or own.port == port):
                    return TargetRefused(text, port, f"uptimed's own {own.name}", own_service=True)
        if self.allow_all_networks:
            return None
        for candidate in candidates:
            if any(candidate in network for network in self.allow_networks if network.version == candidate.version):
                continue
            for rule in RULES:
                if any(candidate in network for network in rule.networks if network.version == candidate.version):
                    return TargetRefused(text, port, rule.name)
        return None

    def check(self, address: str | Address, port: int | None = None) -> None:
        """Raise :class:`TargetRefused` unless connecting to ``address`` (on ``port``) is allowed."""
        refused = self.refusal(address, port)
        if refused is not None:
            raise refused

    def allowed(self, addresses: Iterable[str], port: int | None, *, host: str) -> list[str]:
        """The ``addresses`` (of ``host``) that may be connected to; :class:`TargetRefused` when none may.

        One refused address does not spoil the rest: a connection is only ever made to an allowed one.
        """
        kept: list[str] = []
        first: TargetRefused | None = None
        for address in addresses:
            refused = self.refusal(address, port)
            if refused is None:
                kept.append(address)
            elif first is None:
                first = refused
        if not kept and first is not None:
            if parse_address(host) is None:
                raise TargetRefused(
                    first.address,
                    first.port,
                    f"{first.reason}, and so is every address of {host}",
                    own_service=first.own_service,
                )
            raise first
        return kept

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` this policy allows, in the resolver's order.

        ``socket.gaierror`` when the name does not resolve, :class:`TargetRefused`
        when every address is refused. A monitor kind that opens its own
        connections connects only to these (by address, never by name again:
        a second lookup could answer differently).
        """
        literal = parse_address(host)
        if literal is not None:
            self.check(literal, port)
            return [str(literal)]
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return self.allowed(addresses, port, host=host) if self.enforced else addresses


TRUSTED = TargetPolicy(enforced=False)
"""For monitors and integrations declared in the config file: the operator's own, reaching anything."""


def own_service_endpoints(settings: Settings, api_port: int | None = None) -> list[tuple[str, str, int | None]]:
    """``(name, host, port)`` of each of uptimed's own services: PostgreSQL, Redis, Kafka brokers and the API."""
    found: list[tuple[str, str, int | None]] = []
    dsn = urlsplit(settings.database.dsn.get_secret_value())
    for host in (dsn.hostname or "").split(","):
        if host:
            found.append(("PostgreSQL", host, _port(dsn, 5432)))
    redis = urlsplit(settings.redis.url.get_secret_value())
    if redis.hostname:
        found.append(("Redis", redis.hostname, _port(redis, 6379)))
    for server in settings.kafka.bootstrap_servers:
        host, _, number = server.rpartition(":")
        found.append(("Kafka broker", host.strip("[]"), int(number) if number.isdigit() else None))
    api_host = settings.api.host
    api = api_port if api_port is not None else settings.api.port
    if parse_address(api_host) in (ipaddress.IPv4Address("0.0.0.0"), ipaddress.IPv6Address("::")):
        found += [("API", local, api) for local in _local_addresses()]
    else:
        found.append(("API", api_host, api))
    return found


def _port(parts: object, default: int) -> int | None:
    try:
        return getattr(parts, "port", None) or default
    except ValueError:
        return None  # a malformed port: refuse every port of the host


def _local_addresses() -> list[str]:
    """This machine's own addresses, as well as it can be told without asking the network."""
    found = ["127.0.0.1", "::1"]
    try:
        found += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))  # no packet leaves: a datagram socket only picks its route
                found.append(str(udp.getsockname()[0]))
        except OSError:
            pass
    return list(dict.fromkeys(found))


def _addresses_of(host: str) -> list[Address]:
    literal = parse_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [ip for info in infos if (ip := parse_address(str(info[4][0]))) is not None]


def policy_for(settings: Settings, *, api_port: int | None = None) -> TargetPolicy:
    """The policy of ``[security]``, with the addresses of uptimed's own services resolved now.

    Resolving blocks for as long as the system resolver takes: call it once, at start-up.
    """
    security = settings.security
    own: list[OwnService] = []
    for name, host, port in own_service_endpoints(settings, api_port):
        own += [OwnService(name, address, port) for address in _addresses_of(host)]
    return TargetPolicy(
        allow_networks=tuple(security.allow_networks),
        allow_all_networks=security.allow_all_networks,
        own_services=tuple(dict.fromkeys(own)),
    )


def split_url(url: str) -> tuple[str, int] | None:
    """``(host, port)`` of an http(s) URL, or None when it has no host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def split_host_port(target: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` (``[::1]:443`` too), or None."""
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


async def problems_of_host(policy: TargetPolicy, host: str, port: int, loc: Loc) -> list[Problem]:
    """The policy's refusal of ``host:port`` as a problem at ``loc``, when it refuses it (DNS included).

    A name that does not resolve (yet) passes: it is checked again at every connection.
    """
    if not policy.enforced:
        return []
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            addresses = await TRUSTED.resolve(host, port)
    except (OSError, TimeoutError, UnicodeError):
        return []
    for address in addresses:
        refused = policy.refusal(address, port)
        if refused is not None:
            return [Problem(loc, str(refused), "target_refused")]
    return []


async def problems_of_url(policy: TargetPolicy, url: str, loc: Loc) -> list[Problem]:
    """:func:`problems_of_host` of an http(s) URL's host; nothing for anything else."""
    found = split_url(url)
    return await problems_of_host(policy, *found, loc) if found else []


async def problems_of_config(
    policy: TargetPolicy, config: object, loc: Sequence[str | int] = ("config",)
) -> list[Problem]:
    """Every http(s) URL inside an integration's config (secrets too), checked by the policy."""
    problems: list[Problem] = []
    stack: list[tuple[tuple[str | int, ...], object]] = [(tuple(loc), config)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            problems += await problems_of_url(policy, value, where)
        elif isinstance(value, dict):
            stack += [((*where, key), item) for key, item in value.items()]
        elif isinstance(value, list):
            stack += [((*where, index), item) for index, item in enumerate(value)]
    return problems
