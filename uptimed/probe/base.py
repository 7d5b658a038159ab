"""The one interface every monitor kind implements, built-in or plugin.

A kind is a small object with a ``name``, a pydantic ``config_model`` (the
options of its monitors, validated wherever a monitor comes from: the config
file, the API, the pages) and ``async def check(monitor, options, context)``
that returns a :class:`~uptimed.check.CheckResult`: every problem of
the target is a DOWN result with an error class and a one-line message,
never an exception. Kinds are found through the entry-point group
``uptimed.kinds`` (:mod:`uptimed.probe.kinds`), built-ins included.

Optional attributes:

- ``title``: what people call it (``"DNS"``); default: its name in words.
- ``target_help``: what its monitors' ``target`` holds, for forms and the API.
- ``scheduled``: False for a kind whose results are pushed to uptimed (the
  heartbeat) rather than fetched on a schedule; the scheduler skips them.
- ``def target_problem(self, target: str) -> str | None``: why a target is
  unusable (shown beside the field), None when it is fine.

A check reaches its target through :meth:`CheckContext.addresses`, the one
call where a target policy (which addresses monitors may reach) applies.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from uptimed.check import CheckResult, CheckStatus, ErrorClass, now_ms
from uptimed.rules.targets import TargetPolicy
from uptimed.rules.targets import TargetRefused as PolicyRefused

if TYPE_CHECKING:
    import aiohttp

    from uptimed.monitor import Monitor

MAX_MESSAGE_CHARS = 2000


@runtime_checkable
class Kind(Protocol):
    """A kind of monitor: its name, the model of its options, and how one check runs."""

    name: str
    config_model: type[BaseModel]

    async def check(self, monitor: Monitor, options: Any, context: CheckContext) -> CheckResult:
        """Check ``monitor`` once; ``options`` is an instance of ``config_model``."""
        ...


class TargetRefused(Exception):
    """The target policy does not let this monitor reach that address; ``str()`` says why and names the setting.

    Not an ``OSError``: a kind that turns connection errors into results must not take it for one.
    """


def policed_resolve(policy: TargetPolicy) -> Resolve:
    """A :data:`Resolve` that gives only the addresses ``policy`` allows (:mod:`uptimed.rules.targets`)."""

    async def resolve(host: str, port: int) -> list[str]:
        try:
            return await policy.resolve(host, port)
        except PolicyRefused as exc:
            raise TargetRefused(str(exc)) from None

    return resolve


Resolve = Callable[[str, int], Awaitable[list[str]]]
"""``await resolve(host, port)``: the IP addresses a check may connect to for ``host``, best first.

Raises :class:`TargetRefused` when the policy allows none of them, ``OSError``
(``socket.gaierror``) when the name does not resolve.
"""


async def resolve_any(host: str, port: int) -> list[str]:
    """Every address of ``host``, as the system resolves it (no policy)."""
    try:
        return [str(ipaddress.ip_address(host))]  # an address already: no trip to the resolver's thread
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in found:
            found.append(str(sockaddr[0]))
    return found


@dataclass(slots=True)
class CheckContext:
    """What one check has besides its monitor: where it runs, shared clients, how it reaches its target.

    ``up()`` and ``down()`` make the result with the monitor's id, the region
    and the check's times filled in.
    """

    monitor_id: int
    region: str
    session: aiohttp.ClientSession | None = None
    """The shared aiohttp session (for kinds that speak HTTP)."""
    scheduled_at_ms: int | None = None
    resolve: Resolve = resolve_any
    checked_at_ms: int = field(default_factory=now_ms)
    """When the check started."""
    started: float = field(default_factory=time.perf_counter)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` this check may connect to (see :data:`Resolve`)."""
        return await self.resolve(host, port)

    def elapsed_ms(self) -> float:
        """Milliseconds since the check started."""
        return (time.perf_counter() - self.started) * 1000.0

    def up(
        self, *, response_time_ms: float | None = None, message: str | None = None, status_code: int | None = None
    ) -> CheckResult:
        """An UP result of this check."""
        return CheckResult(
            monitor_id=self.monitor_id,
            region=self.region,
            status=CheckStatus.UP,
            response_time_ms=response_time_ms,
            status_code=status_code,
            message=_clip(message),
            checked_at_ms=self.checked_at_ms,
            scheduled_at_ms=self.scheduled_at_ms,
        )

    def down(
        self,
        error_class: ErrorClass,
        error: str,
        *,
        response_time_ms: float | None = None,
        message: str | None = None,
        status_code: int | None = None,
    ) -> CheckResult:
        """A DOWN result of this check: why, in one line."""
        return CheckResult(
            monitor_id=self.monitor_id,
            region=self.region,
            status=CheckStatus.DOWN,
            response_time_ms=response_time_ms,
            status_code=status_code,
            error_class=error_class,
            error=_clip(error),
            message=_clip(message),
            checked_at_ms=self.checked_at_ms,
            scheduled_at_ms=self.scheduled_at_ms,
        )


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 1] + "…"


def split_host_port(target: str, default_port: int | None = None) -> tuple[str, int]:
    """``"db.example:5432"`` -> ``("db.example", 5432)``; ``"[::1]:53"`` -> ``("::1", 53)``.

    Without a port, ``default_port``; ``ValueError`` (with the reason) when
    there is none or the target is not ``host[:port]``.
    """
    text = target.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("expected [IPv6 address]:port")
        port_text = rest[1:]
    elif text.count(":") > 1:  # a bare IPv6 address
        host, port_text = text, ""
    else:
        host, _, port_text = text.partition(":")
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise ValueError("expected host:port")
    if not port_text:
        if default_port is None:
            raise ValueError("expected host:port")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("the port must be a number from 1 to 65535")
    return host, int(port_text)


def host_port_problem(target: str, default_port: int | None = None) -> str | None:
    """Why ``target`` is not ``host:port`` (the port optional with a default), None when it is."""
    try:
        split_host_port(target, default_port)
    except ValueError as exc:
        return str(exc)
    return None
