"""``uptimed run``: connect to the services, then hand the parts to the supervisor."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio
import asyncpg
import httpx
import redis.asyncio as aioredis
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from anyio.abc import TaskStatus
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.typing import EncodableT
from redis.utils import HIREDIS_AVAILABLE

from uptimed import __version__, metrics
from uptimed import log as uptimed_log
from uptimed.api.server import bind, serve
from uptimed.bus.kafka import ensure_topics, log_broker_release, make_producer
from uptimed.channels.http import delivery_client
from uptimed.channels.registry import ChannelRegistry, default_registry
from uptimed.config import ConfigError, ConfigProblem, RedisSettings, Settings, load_settings
from uptimed.errors import ServiceUnavailable
from uptimed.evaluate.evaluator import Evaluator
from uptimed.notify.dispatcher import Dispatcher
from uptimed.notify.notifier import Notifier
from uptimed.probe.forwarder import Forwarder
from uptimed.probe.http import make_session
from uptimed.probe.kinds import default_kinds
from uptimed.probe.pings import PingReceiver
from uptimed.probe.queue import ProbeQueue
from uptimed.probe.scheduler import Scheduler, process_identity
from uptimed.probe.worker import ProbeWorker
from uptimed.retention import Retention
from uptimed.roles import ROLES, parts_of
from uptimed.rules import declared
from uptimed.rules.targets import TRUSTED, TargetPolicy, policy_for
from uptimed.store import monitors
from uptimed.store.database import connect, migrate
from uptimed.store.monitor_feed import MonitorFeed, MonitorListener
from uptimed.supervisor import Part, Supervisor
from uptimed.systemd import SystemdNotifier
from uptimed.watch import PostgresProbe, ServiceWatch, kafka_probe, redis_probe

log = structlog.get_logger()

STOP_GRACE_S = 20.0
"""How long a graceful stop may take before the remaining work is abandoned."""
DRAIN_S = 10.0
"""Of that, how long in-flight checks and deliveries may take to finish (the rest closes connections)."""
POLL_BOUND_S = 30.0
"""A consumer polls every half second, a scheduler, worker or forwarder loops every second at most;
one that has not for this long is stuck (readiness says so)."""


async def connect_redis(settings: RedisSettings) -> aioredis.Redis:
    pool = aioredis.ConnectionPool.from_url(
        settings.url.get_secret_value(),
        socket_connect_timeout=settings.connect_timeout,
        health_check_interval=15,
        retry_on_timeout=True,
    )
    pool.connection_class = packing_with_hiredis(pool.connection_class)  # the class the URL chose (TLS, socket)
    client = aioredis.Redis.from_pool(pool)
    try:
        with anyio.fail_after(settings.connect_timeout):
            await client.ping()
    except (OSError, TimeoutError, aioredis.RedisError) as exc:
        await client.aclose()
        raise ServiceUnavailable("redis", f"cannot connect: {exc or type(exc).__name__}") from exc
    return client


def packing_with_hiredis(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """``cls``, packing commands with hiredis (C) when it is installed, as redis-py's own sync client does.

    redis-py's asyncio connections pack every argument in Python. An enqueue of
    2,500 jobs (five arguments each) took 8.8 ms so, 1.7 ms with hiredis; a
    probe-only process at its ceiling made a few percent more checks per
    CPU-second (bench/README.md). The bytes are the same; redis-py's checks of
    the arguments are kept.
    """
    if not HIREDIS_AVAILABLE:
        return cls
    serializer = HiredisRespSerializer()

    def pack_command(self: AbstractConnection, *args: EncodableT) -> list[bytes]:
        packed: list[bytes] = serializer.pack(*args)  # type: ignore[arg-type]  # redis-py types *args as a list
        return packed

    return type(cls.__name__, (cls,), {"pack_command": pack_command, "__doc__": cls.__doc__})


async def start_producer(settings: Settings) -> AIOKafkaProducer:
    producer = make_producer(settings.kafka)
    try:
        with anyio.fail_after(settings.kafka.request_timeout):
            await producer.start()
    except (KafkaError, OSError, TimeoutError) as exc:
        await producer.stop()
        raise ServiceUnavailable("kafka", f"producer cannot connect: {exc or type(exc).__name__}") from exc
    return producer


async def start_kafka(settings: Settings) -> AIOKafkaProducer:
    """Say which broker this is, create missing topics, start the producer."""
    await log_broker_release(settings.kafka)
    await ensure_topics(settings.kafka)
    return await start_producer(settings)


async def _stop_once_started(starting: asyncio.Task[AIOKafkaProducer]) -> None:
    """Stop the producer ``starting`` made; if it is still starting, stop that instead."""
    starting.cancel()  # nothing when it is done
    await asyncio.wait([starting])
    if not starting.cancelled() and starting.exception() is None:
        await starting.result().stop()


@dataclass(frozen=True)
class Connections:
    """What one process opens at start-up and its parts share; closed together when it stops."""

    pool: asyncpg.Pool
    redis: aioredis.Redis
    producer: AIOKafkaProducer
    probes: aiohttp.ClientSession
    """The probes' HTTP client for the config file's monitors."""
    policed_probes: aiohttp.ClientSession
    """The probes' HTTP client for users' monitors: every connection checked by the target policy."""
    http: httpx.AsyncClient
    """The deliveries' HTTP client for users' integrations (the API's test notifications too), policed."""
    trusted_http: httpx.AsyncClient
    """The deliveries' HTTP client for the config file's integrations."""
    policy: TargetPolicy
    """What users' monitors and integrations may connect to (:mod:`uptimed.rules.targets`)."""
    api_socket: socket.socket | None
    """The API's listening socket, bound here when this process has the api role (else None)."""


@asynccontextmanager
async def connected(settings: Settings, roles: frozenset[str] = frozenset(ROLES)) -> AsyncIterator[Connections]:
    """Connect to PostgreSQL (and migrate it), Redis and Kafka, open the HTTP clients; close them all on leaving.

    With the api role the API's socket is bound here, before the target policy is made: its port
    (``[api] port = 0`` picks one) is one of uptimed's own that users' targets may never reach.
    """
    async with AsyncExitStack() as stack:
        # Kafka's round trips (versions, topics, the producer's metadata) meanwhile: the
        # probes need only PostgreSQL and Redis, and start sooner for it. Failures are
        # reported in the same order as before: PostgreSQL, Redis, then Kafka.
        kafka = asyncio.create_task(start_kafka(settings))
        stack.push_async_callback(_stop_once_started, kafka)
        pool = await connect(settings.database)
        stack.push_async_callback(pool.close)
        migration = await migrate(pool)
        log.info("database.ready", schema_version=migration.version, migrated=migration.applied)
        redis = await connect_redis(settings.redis)
        stack.push_async_callback(redis.aclose)
        producer = await kafka
        api_socket: socket.socket | None = None
        api_port: int | None = None  # another process's API: the port in the settings
        if settings.api.enabled and "api" in roles:
            api_socket = bind_api(settings)
            stack.callback(api_socket.close)  # unless served (closing twice is harmless)
            api_port = int(api_socket.getsockname()[1])
        # The addresses of our own services are resolved once: users' targets may never be one of them.
        policy = await anyio.to_thread.run_sync(lambda: policy_for(settings, api_port=api_port))
        probes = make_session(limit=settings.probe.concurrency)
        stack.push_async_callback(probes.close)
        policed_probes = make_session(limit=settings.probe.concurrency, policy=policy)
        stack.push_async_callback(policed_probes.close)
        notify = settings.notify
        http, trusted_http = (
            delivery_client(
                policy=client_policy,
                timeout=notify.delivery_timeout,
                per_destination=notify.connections_per_destination,
                max_connections=notify.concurrency + 100,
            )
            for client_policy in (policy, TRUSTED)
        )
        stack.push_async_callback(http.aclose)
        stack.push_async_callback(trusted_http.aclose)
        yield Connections(
            pool=pool,
            redis=redis,
            producer=producer,
            probes=probes,
            policed_probes=policed_probes,
            http=http,
            trusted_http=trusted_http,
            policy=policy,
            api_socket=api_socket,
        )


def bind_api(settings: Settings) -> socket.socket:
    """The API's listening socket; a taken address fails start-up (:class:`ServiceUnavailable`)."""
    try:
        return bind(settings.api)
    except OSError as exc:
        raise ServiceUnavailable(
            "api", f"cannot listen on {settings.api.host}:{settings.api.port}: {exc.strerror}"
        ) from exc


async def run(
    settings: Settings,
    *,
    config_path: Path | None = None,
    registry: ChannelRegistry | None = None,
    roles: frozenset[str] = frozenset(ROLES),
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """``uptimed run``: connect, run until SIGTERM / SIGINT, then stop within :data:`STOP_GRACE_S`.

    Runs the parts of ``roles`` (see :mod:`uptimed.roles`); ``task_status`` is
    told once they all run (``daemon.ready``).
    """
    watch = ServiceWatch()
    # From here on the client libraries' log records are folded into the watch's lines about each service.
    uptimed_log.fold_library_records(watch.library_record)
    # The installed kinds and channels (entry points, ~80 ms) are found while the connections are being made.
    discovering = asyncio.create_task(asyncio.to_thread(_discover_plugins, channels=registry is None))
    try:
        async with connected(settings, roles) as connections:
            await discovering
            daemon = Daemon(
                settings,
                connections,
                watch=watch,
                registry=registry or default_registry(),
                config_path=config_path,
                roles=roles,
            )
            await daemon.run(task_status=task_status)
    finally:
        watch.flush()
        uptimed_log.fold_library_records(None)
    log.info("daemon.stopped")


def _discover_plugins(*, channels: bool) -> None:
    """Load the installed kinds (and channels) into their process-wide registries (each is found once)."""
    default_kinds()
    if channels:
        default_registry()


def _import_api() -> None:
    """Load the API and the pages (run in a thread: see the api part)."""
    import uptimed.api.health
    import uptimed.app  # noqa: F401


class Daemon:
    """One connected uptimed process: its supervised parts, and how it answers signals and systemd."""

    def __init__(
        self,
        settings: Settings,
        connections: Connections,
        *,
        watch: ServiceWatch,
        registry: ChannelRegistry,
        config_path: Path | None = None,
        roles: frozenset[str] = frozenset(ROLES),
    ) -> None:
        self.settings = settings
        self.connections = connections
        self.registry = registry
        self.kinds = default_kinds()  # found at start-up, as channels are: before the start-up objects are frozen
        self.config_path = config_path
        self.roles = roles
        self.watch = watch
        watch.add("postgresql", PostgresProbe(settings.database.dsn.get_secret_value()))
        watch.add("redis", redis_probe(connections.redis))
        watch.add("kafka", kafka_probe(connections.producer.client))
        self.systemd = SystemdNotifier()
        self.workers: list[ProbeWorker] = []
        self._api_socket = connections.api_socket
        self.supervisor = Supervisor(parts_of(roles, self._parts()), watch=watch)
        self._monitor_count: int | None = None

    def _parts(self) -> list[Part]:
        """Every part a process can run, built from its settings (the probe workers kept for STATUS=)."""
        settings = self.settings
        pool, redis, producer = self.connections.pool, self.connections.redis, self.connections.producer
        identity = process_identity()
        feed = MonitorFeed()
        parts: list[Part] = [Part("monitors", MonitorListener(feed, pool).run, progress_bound=POLL_BOUND_S)]
        for region in settings.probe.regions:
            queue = ProbeQueue(redis, prefix=settings.redis.key_prefix, region=region, feed=feed)
            scheduler = Scheduler(
                redis=redis,
                queue=queue,
                feed=feed,
                configured_regions=settings.probe.all_regions,
                prefix=settings.redis.key_prefix,
            )
            worker = ProbeWorker(
                queue=queue,
                session=self.connections.probes,
                consumer=identity,
                concurrency=settings.probe.concurrency,
                policed=(self.connections.policed_probes, self.connections.policy),
            )
            forwarder = Forwarder(
                redis=redis,
                producer=producer,
                topic=settings.kafka.topics.checks,
                prefix=settings.redis.key_prefix,
                region=region,
                buffer_max=settings.probe.buffer_max,
                token=identity,
                probes_drained=worker.drained,
            )
            self.workers.append(worker)
            parts += [
                Part(f"scheduler:{region}", scheduler.run, progress_bound=POLL_BOUND_S),
                # No bound: a check may rightly take up to its timeout, which can be minutes.
                Part(f"probe:{region}", worker.run, drain=worker.drain),
                Part(f"forwarder:{region}", forwarder.run, drain=forwarder.drain, progress_bound=POLL_BOUND_S),
            ]
        evaluator = Evaluator(settings=settings, pool=pool, producer=producer, feed=feed)
        dispatcher = Dispatcher(
            pool=pool,
            registry=self.registry,
            settings=settings.notify,
            smtp=settings.smtp,
            http=self.connections.http,
            owner=identity,
            public_url=settings.api.public_url,
            trusted_http=self.connections.trusted_http,
            policy=self.connections.policy,
        )
        notifier = Notifier(settings=settings, pool=pool, producer=producer, dispatcher=dispatcher)
        parts += [
            Part("evaluator", evaluator.run, progress_bound=POLL_BOUND_S),
            Part("notifier", notifier.run, progress_bound=POLL_BOUND_S),
            Part("dispatcher", dispatcher.run, drain=dispatcher.drain, progress_bound=dispatcher.progress_bound),
            Part("retention", Retention(pool=pool, settings=settings.retention).run),
        ]
        if settings.api.enabled and "api" in self.roles:
            pings = PingReceiver(
                pool=pool, redis=redis, prefix=settings.redis.key_prefix, region=settings.probe.regions[0]
            )
            # Listening (bound by connected()) before READY=1, so systemd's "ready" includes the API.

            async def run_api() -> None:
                sock, self._api_socket = self._api_socket, None  # a restart binds afresh
                # FastAPI, the pages and their templates load in a thread, beside the first checks rather than
                # before them (about half of the daemon's import time); a request meanwhile waits in the backlog.
                await anyio.to_thread.run_sync(_import_api)
                from uptimed.api.health import daemon_readiness
                from uptimed.app import create_app

                app = create_app(
                    pool=pool,
                    registry=self.registry,
                    settings=settings,
                    http=self.connections.http,
                    readiness=daemon_readiness(services=self.watch.problems, parts=lambda: self.supervisor.parts),
                    pings=pings,
                    policy=self.connections.policy,
                    trusted_http=self.connections.trusted_http,
                )
                await serve(app, settings.api, sock=sock)

            parts.append(Part("api", run_api))
        return parts

    async def sync_config(self, settings: Settings | None = None) -> None:
        """Bring the monitors and integrations declared in the config file into the database."""
        await declared.sync(self.connections.pool, settings or self.settings, self.registry, self.config_path)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sync the config file, run the parts until SIGTERM / SIGINT, then stop within :data:`STOP_GRACE_S`."""
        try:
            await self.sync_config()
            metrics.track_parts(lambda: self.supervisor.parts, self.watch.problems)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.watch.run)
                await tg.start(self._handle_signals, tg.cancel_scope)

                async def supervise(*, task_status: TaskStatus[None]) -> None:
                    await self.supervisor.run(task_status=task_status)
                    tg.cancel_scope.cancel()  # stopped: the signal handler and the watch end too

                await tg.start(supervise)
                # What start-up built (modules, classes, settings) lives as long as the process: frozen, a full
                # collection no longer walks it. Under a backlog one took 70-85 ms, and /readyz waited for it.
                gc.freeze()
                log.info(
                    "daemon.ready",
                    version=__version__,
                    regions=self.settings.probe.regions,
                    parts=[p.name for p in self.supervisor.parts],
                )
                task_status.started()
                self.systemd.ready(await self.status_line())
                if self.systemd.watchdog_s:
                    tg.start_soon(self._watchdog, self.systemd.watchdog_s / 2)
        finally:
            if self._api_socket is not None:  # never served
                self._api_socket.close()
            await self.watch.aclose()
            self.systemd.close()

    async def status_line(self) -> str:
        """One line for systemd's STATUS=: what is wrong, as /readyz says it, or monitors, regions, last check."""
        await self._count_monitors()
        return self.status_now()

    def status_now(self) -> str:
        """The STATUS= line from the state the parts keep: no I/O, so a busy pool never delays the watchdog."""
        problems = {**{k: v for k, v in self.watch.problems().items() if v}, **self.supervisor.problems()}
        if problems:
            return "degraded: " + "; ".join(f"{name} {problem}" for name, problem in problems.items())[:400]
        count = self._monitor_count
        last = max((w.last_check_ms for w in self.workers if w.last_check_ms), default=None)
        ago = f"{max(0.0, time.time() - last / 1000):.0f}s ago" if last else "none yet"
        return f"{count if count is not None else '?'} monitors, regions {','.join(self.settings.probe.regions)}, last check {ago}"

    async def _count_monitors(self) -> None:
        try:
            with anyio.fail_after(2):
                self._monitor_count = await monitors.count_enabled(self.connections.pool)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass  # keep the last count; the watch says whether PostgreSQL answers

    def stuck(self) -> list[str]:
        """Parts without progress for longer than their bound while every service answers: ours to restart."""
        if any(self.watch.problems().values()):
            return []  # an outage explains it; a restart would not help
        return [part.name for part in self.supervisor.parts if part.stalled()]

    async def _watchdog(self, every: float) -> None:
        """Ping systemd while the event loop keeps time and no part is stuck; otherwise systemd restarts us."""
        while True:
            started = anyio.current_time()
            await anyio.sleep(every)
            late = anyio.current_time() - started - every
            stuck = self.stuck()
            if late >= every:
                log.warning("daemon.loop_stalled", late_s=round(late, 2))
            elif stuck:
                log.error("daemon.stuck", parts=stuck)  # no ping: systemd restarts the service at the deadline
            else:
                self.systemd.watchdog(self.status_now())
                await self._count_monitors()

    async def reload(self) -> None:
        """SIGHUP: re-read the file; re-sync monitors and integrations, apply the log level.

        A file that no longer validates is rejected with the same message as
        ``check-config`` and the running configuration stays.
        """
        self.systemd.reloading()
        try:
            if self.config_path is None:
                raise ConfigError(Path("<config>"), [ConfigProblem("", "started without a config file")])
            new = load_settings(self.config_path)
            await self.sync_config(new)
        except ConfigError as exc:
            log.error("config.reload_rejected", error=str(exc))
        else:
            fixed = ("database", "redis", "kafka", "probe", "api", "smtp", "notify")
            needs_restart = [name for name in fixed if getattr(new, name) != getattr(self.settings, name)]
            if needs_restart:
                log.warning("config.restart_needed", sections=needs_restart)
            uptimed_log.configure(new.log)
            self.settings = self.settings.model_copy(
                update={"monitors": new.monitors, "integrations": new.integrations, "log": new.log}
            )
            log.info("config.reloaded", monitors=len(new.monitors), integrations=len(new.integrations))
        self.systemd.ready(await self.status_line())

    async def _handle_signals(self, scope: anyio.CancelScope, *, task_status: TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    await self.reload()
                    continue
                log.info("daemon.stopping", signal=signal.Signals(signum).name)
                self.systemd.stopping()
                scope.deadline = anyio.current_time() + STOP_GRACE_S
                await self.supervisor.shutdown(DRAIN_S)
                return
