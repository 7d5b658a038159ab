"""Whether PostgreSQL, Redis and Kafka answer, kept current, and what the log says about it.

Each service is probed every :data:`PROBE_EVERY_S` on a path of its own
(PostgreSQL on a connection outside the pool, so a busy pool never looks
like an outage); readiness reads the result without any I/O.

An outage is written as three kinds of lines: ``service.unreachable`` when
it starts, ``service.still_unreachable`` with a count at most every
:data:`SUMMARY_EVERY_S`, and ``service.back`` with how long it lasted.
Everything else it causes is folded into those counts: the client
libraries' own log records (aiokafka alone writes hundreds a second while a
broker is down; :mod:`uptimed.log` routes them here) and the crashes of
parts that lost their connection (see :class:`~uptimed.supervisor.Supervisor`).
Library records written while the service answers are summarised too, one
line per service at most every :data:`SUMMARY_EVERY_S`, and never at error
level: the group coordinator that is not there yet on a broker's first
start is not an error of uptimed's.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import asyncpg
import redis.asyncio as aioredis
import redis.exceptions
import structlog
from aiokafka.errors import KafkaError

from uptimed.errors import ServiceUnavailable
from uptimed.supervisor import StrayCancellation, is_stray_cancellation

log = structlog.get_logger()

PROBE_EVERY_S = 2.0
"""Often enough to name an outage within a few seconds; each probe is one small request."""
PROBE_TIMEOUT_S = 3.0
"""A service that takes longer than this to answer a ping counts as out of reach."""
SUMMARY_EVERY_S = 30.0
SETTLE_S = 15.0
"""After an outage the clients catch up (a consumer finds its session expired, rejoins): what the libraries
say meanwhile is the outage's echo, counted at debug level only."""

Probe = Callable[[], Awaitable[Any]]

_BENIGN = {
    # The cluster settling (a broker's first start or its return, a rebalance, a leader moving): the client
    # retries by itself.
    "kafka": re.compile(
        r"CoordinatorNotAvailable|CoordinatorLoadInProgress|NotCoordinator|[Rr]ebalanc|[Mm]arking the coordinator dead"
        r"|NotLeaderForPartition|LeaderNotAvailable"
    ),
}
_LIBRARY_BACKLOG = 10_000
"""Library records kept per service until they are attributed; more are only counted."""


@dataclass(eq=False)
class Outage:
    """One period in which a service did not answer."""

    service: str
    since: float
    """Monotonic time of the first failed probe."""
    error: str
    folded: int = 0
    """Lines not written because of it: library records, crashes of parts."""
    parts: set[str] = field(default_factory=set)
    """Parts whose crash during it was logged once already."""
    last_line: float = 0.0
    reported: int = 0
    ended: anyio.Event = field(default_factory=anyio.Event)
    """Set when the service answers again: parts waiting to restart need not wait out their backoff."""


@dataclass
class _Record:
    at: float
    key: str
    text: str
    benign: bool


@dataclass
class _Service:
    name: str
    probe: Probe | None = None
    outage: Outage | None = None
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    pending: list[_Record] = field(default_factory=list)
    overflow: int = 0
    notices: dict[str, int] = field(default_factory=dict)
    notice_text: dict[str, str] = field(default_factory=dict)
    notices_benign: bool = True
    last_notice: float = float("-inf")
    settling_until: float = float("-inf")
    settled: int = 0
    last_outage: Outage | None = None


class ServiceWatch:
    """Probes the services, keeps whether each answers, and writes the few lines an outage deserves."""

    def __init__(
        self,
        *,
        probe_every: float = PROBE_EVERY_S,
        probe_timeout: float = PROBE_TIMEOUT_S,
        summary_every: float = SUMMARY_EVERY_S,
    ) -> None:
        self.probe_every = probe_every
        self.probe_timeout = probe_timeout
        self.summary_every = summary_every
        self._services: dict[str, _Service] = {}
        self._wake = anyio.Event()

    def add(self, name: str, probe: Probe) -> None:
        """Watch ``name`` (``postgresql``, ``redis``, ``kafka``) with ``probe``: raises when it is out of reach."""
        self._service(name).probe = probe

    def _service(self, name: str) -> _Service:
        if name not in self._services:
            self._services[name] = _Service(name)
        return self._services[name]

    # ------------------------------------------------------------------ what readiness and the supervisor ask

    def problems(self) -> dict[str, str | None]:
        """Each watched service: None when it answers, else why not."""
        now = time.monotonic()
        return {
            name: None if s.outage is None else f"unreachable for {now - s.outage.since:.0f} s: {s.outage.error}"
            for name, s in self._services.items()
            if s.probe is not None
        }

    def outage(self, name: str) -> Outage | None:
        service = self._services.get(name)
        return service.outage if service else None

    async def unreachable_cause(self, exc: BaseException) -> Outage | None:
        """The outage ``exc`` comes from, probed now; None when every service it may come from answers.

        An outage that ended in the last :data:`SETTLE_S` counts too: a query cut
        short by its deadline while PostgreSQL hung fails only after it is back.
        """
        names = _services_of(exc)
        if names is None:
            return None
        candidates = [self._services[n] for n in (names or self._services) if n in self._services]
        for service in candidates:
            if service.probe is not None:
                await self._check(service)
            if service.outage is not None:
                return service.outage
        for service in candidates:
            if service.last_outage is not None and time.monotonic() < service.settling_until:
                return service.last_outage
        return None

    def count(self, name: str, lines: int = 1) -> None:
        """``lines`` about ``name`` were folded into its outage (when it has one)."""
        outage = self.outage(name)
        if outage is not None:
            outage.folded += lines

    # ------------------------------------------------------------------ library records (from uptimed.log)

    def library_record(self, name: str, record: logging.LogRecord) -> None:
        """Keep a client library's record until the next probe says whether it belongs to an outage."""
        service = self._service(name)
        if len(service.pending) >= _LIBRARY_BACKLOG:
            service.overflow += 1
            return
        text = " ".join(record.getMessage().split())[:300]
        benign = bool(_BENIGN[name].search(text)) if name in _BENIGN else False
        service.pending.append(_Record(time.monotonic(), f"{record.name}:{record.msg}", text, benign))
        if service.outage is None:
            self._wake.set()  # probe now: the sooner it is known, the fewer records wait

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Probe every service every ``probe_every`` (sooner when a library complains); write what changed."""
        while True:
            started = time.monotonic()
            async with anyio.create_task_group() as tg:
                for service in self._services.values():
                    if service.probe is not None:
                        tg.start_soon(self._check, service)
            self._settle(before=started)
            with anyio.move_on_after(max(self.probe_every - (time.monotonic() - started), 0.05)):
                await self._wake.wait()
            self._wake = anyio.Event()

    def flush(self) -> None:
        """Write what is still folded (at exit), so no library record is lost without a trace."""
        self._settle(before=float("inf"), final=True)

    async def aclose(self) -> None:
        for service in self._services.values():
            close = getattr(service.probe, "aclose", None)
            if close is not None:
                await close()

    async def _check(self, service: _Service) -> None:
        assert service.probe is not None
        async with service.lock:
            try:
                with anyio.fail_after(self.probe_timeout):
                    await service.probe()
            except BaseException as exc:  # any failure of a ping means out of reach; a stop goes on
                if not isinstance(exc, Exception) and not is_stray_cancellation(exc):
                    raise
                self._failed(service, _describe(exc))
            else:
                self._answered(service)

    def _failed(self, service: _Service, error: str) -> None:
        now = time.monotonic()
        if service.outage is None:
            service.outage = Outage(service.name, since=now, error=error, last_line=now)
            log.warning("service.unreachable", service=service.name, error=error)
        else:
            service.outage.error = error

    def _answered(self, service: _Service) -> None:
        outage, service.outage = service.outage, None
        if outage is not None:
            outage.ended.set()
            service.last_outage = outage
            service.settling_until = time.monotonic() + SETTLE_S
            self._attribute(service, outage, before=float("inf"))
            log.info(
                "service.back",
                service=service.name,
                down_s=round(time.monotonic() - outage.since, 1),
                folded=outage.folded,
            )

    def _settle(self, *, before: float, final: bool = False) -> None:
        now = time.monotonic()
        for service in self._services.values():
            outage = service.outage
            if outage is not None:
                self._attribute(service, outage, before=before)
                if now - outage.last_line >= self.summary_every or final:
                    log.warning(
                        "service.still_unreachable",
                        service=service.name,
                        for_s=round(now - outage.since),
                        error=outage.error,
                        folded=outage.folded - outage.reported,
                    )
                    outage.last_line, outage.reported = now, outage.folded
            else:
                self._notice(service, before=before, final=final)

    def _attribute(self, service: _Service, outage: Outage, *, before: float) -> None:
        """Library records that arrived before ``before`` are part of ``outage``."""
        kept = [r for r in service.pending if r.at >= before]
        outage.folded += len(service.pending) - len(kept) + service.overflow
        service.pending, service.overflow = kept, 0

    def _notice(self, service: _Service, *, before: float, final: bool) -> None:
        """Library records while the service answers: one line per ``summary_every`` at most."""
        settled = [r for r in service.pending if r.at < before]
        service.pending = [r for r in service.pending if r.at >= before]
        echo = [r for r in settled if r.at < service.settling_until]
        if echo:
            service.settled += len(echo)
            settled = [r for r in settled if r.at >= service.settling_until]
        elif service.settled and (time.monotonic() >= service.settling_until or final):
            log.debug("service.settled", service=service.name, messages=service.settled)
            service.settled = 0
        for record in settled:
            service.notices[record.key] = service.notices.get(record.key, 0) + 1
            service.notice_text.setdefault(record.key, record.text)
            service.notices_benign &= record.benign
        count = sum(service.notices.values()) + service.overflow
        now = time.monotonic()
        if not count or (now - service.last_notice < self.summary_every and not final):
            return
        common = sorted(service.notices, key=service.notices.__getitem__, reverse=True)[:3]
        level = log.info if service.notices_benign else log.warning
        level(
            "service.client_messages",
            service=service.name,
            count=count,
            messages={service.notice_text[key]: service.notices[key] for key in common},
        )
        service.notices, service.notice_text, service.notices_benign = {}, {}, True
        service.overflow, service.last_notice = 0, now


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


_POSTGRES = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
)
_REDIS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _services_of(exc: BaseException) -> set[str] | None:
    """The services ``exc`` may come from (empty: any); None when it is not about reaching one."""
    if isinstance(exc, BaseExceptionGroup):
        found: set[str] = set()
        for inner in exc.exceptions:
            names = _services_of(inner)
            if names is not None:
                if not names:
                    return set()
                found |= names
        return found or None
    if isinstance(exc, ServiceUnavailable):
        return {exc.service}
    if isinstance(exc, _POSTGRES):
        return {"postgresql"}
    if isinstance(exc, _REDIS):
        return {"redis"}
    if isinstance(exc, KafkaError):
        return {"kafka"}
    if isinstance(exc, (OSError, TimeoutError, StrayCancellation)):  # a client library's, any service's
        return set()
    return None


class PostgresProbe:
    """``SELECT 1`` on a connection of its own, opened again after any failure."""

    def __init__(self, dsn: str, *, timeout: float = PROBE_TIMEOUT_S) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self._conn: asyncpg.Connection | None = None

    async def __call__(self) -> None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self.dsn, timeout=self.timeout)
            await self._conn.fetchval("SELECT 1", timeout=self.timeout)
        except BaseException:
            # Cut off in the middle of a query the connection is of no further use: never reuse it.
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
            raise

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None


def redis_probe(client: aioredis.Redis) -> Probe:
    async def ping() -> None:
        await client.ping()

    return ping


def kafka_probe(client: Any) -> Probe:
    """An ApiVersions request answered by one of the brokers; ``client`` is an ``AIOKafkaClient`` (a producer's ``.client``).

    The smallest request a broker answers: a metadata request describes every
    topic of the cluster, and a broker shared by many topics made the probe,
    once a second, the daemon's costliest task after the checks themselves.
    """
    from aiokafka.protocol.admin import ApiVersionRequest

    async def api_versions() -> None:
        brokers = sorted(client.cluster.brokers(), key=lambda b: b.nodeId)
        if not brokers:  # nothing known yet: ask the bootstrap servers
            await client.fetch_all_metadata()
            return
        node = brokers[int(time.monotonic()) % len(brokers)].nodeId  # each broker in turn
        if not await client.ready(node):  # connects (again) when it must
            raise ConnectionError(f"broker {node} is not reachable")
        await client.send(node, ApiVersionRequest())

    return api_versions
