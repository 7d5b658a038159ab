"""`uptimed run` against the real services: connects, creates topics, stops on SIGTERM."""

from __future__ import annotations

import signal
import uuid

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from tests.support import Stack, kafka_version, to_toml
from uptimed.config import RedisSettings
from uptimed.daemon import connect_redis, packing_with_hiredis


async def test_run_connects_and_stops_cleanly_on_sigterm(stack: Stack, start_daemon) -> None:
    daemon = await start_daemon(stack.toml())
    [broker] = daemon.events("kafka.broker")  # logged once, before the topics
    major, minor, _ = kafka_version().split(".")
    assert broker["version"].startswith(f"{major}.{minor}") and broker["brokers"] == 1
    assert not daemon.events("kafka.broker_unsupported")
    created = await daemon.wait_for("kafka.topics_created")
    assert sorted(created["topics"]) == sorted(
        [f"{stack.prefix}.checks", f"{stack.prefix}.website.events", f"{stack.prefix}.dead-letters"]
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([f"{stack.prefix}.checks"])
        assert len(described[0]["partitions"]) == 3
    finally:
        await admin.close()

    assert await daemon.stop(signal.SIGTERM, timeout=25) == 0
    assert daemon.events("daemon.stopped")


async def test_sigint_also_stops_with_exit_0(stack: Stack, start_daemon) -> None:
    daemon = await start_daemon(stack.toml())
    assert await daemon.stop(signal.SIGINT, timeout=25) == 0


@pytest.mark.parametrize(
    ("section", "service"),
    [
        ('[kafka]\nbootstrap_servers = ["127.0.0.1:1"]\nrequest_timeout = 3\n', "kafka"),
        ('[redis]\nurl = "redis://127.0.0.1:1/0"\nconnect_timeout = 2\n', "redis"),
    ],
)
async def test_unreachable_service_is_named_and_exits_1(stack: Stack, start_daemon, section: str, service: str) -> None:
    sections = stack.sections()
    name = section.split("]")[0][1:]
    del sections[name]

    daemon = await start_daemon(to_toml(sections) + "\n" + section, wait_ready=False)
    code = await daemon.process.wait()
    await daemon._reader
    assert code == 1
    assert any(f"uptimed: {service}:" in line for line in daemon.raw), daemon.raw[-5:]


async def test_topics_managed_elsewhere_are_not_created(stack: Stack, start_daemon) -> None:
    sections = stack.sections()
    sections["kafka"]["manage_topics"] = False

    daemon = await start_daemon(to_toml(sections))
    assert not daemon.events("kafka.topics_created")
    assert await daemon.stop() == 0


async def test_a_bad_integration_in_the_file_stops_run_with_the_check_config_message(
    stack: Stack, start_daemon
) -> None:
    bad = '[[integrations]]\nowner = "a"\nkey = "k"\ntype = "slack"\nconfig = { webhookUrl = "not a url" }\n'
    daemon = await start_daemon(stack.toml(bad), wait_ready=False)
    assert await daemon.process.wait() == 2
    await daemon._reader
    assert any("integrations[0].config.webhookUrl" in line for line in daemon.raw), daemon.raw[-5:]
    assert not any("not a url" in line for line in daemon.raw), "the rejected (secret) value is not echoed"


async def test_a_taken_api_address_fails_start_up_with_a_clear_message(stack: Stack, start_daemon) -> None:
    import socket

    sections = stack.sections()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": taken.getsockname()[1]}
        daemon = await start_daemon(to_toml(sections), wait_ready=False)
        assert await daemon.process.wait() == 1
    await daemon._reader
    assert any("uptimed: api: cannot listen on 127.0.0.1:" in line for line in daemon.raw), daemon.raw[-5:]


async def test_roles_split_across_processes_still_make_one_pipeline(topics: Stack, start_daemon) -> None:
    """One process only checks (--parts probe), another evaluates and notifies: alerts still flow, once."""
    stack = topics
    from tests.support import EventReader, Target
    from tests.test_monitoring import monitor

    target = await Target(status=500).start()
    events = await EventReader(stack.bootstrap, f"{stack.prefix}.website.events").start()
    try:
        config = stack.toml(monitor(target.url(), failure_threshold=1))
        prober = await start_daemon(config, args=("--parts", "probe"))
        assert prober.events("daemon.ready")[0]["parts"] == [
            "monitors",
            "scheduler:default",
            "probe:default",
            "forwarder:default",
        ]
        await target.wait_hits(2)
        assert events.events == []  # nobody evaluates yet: the results wait on `checks`
        judge = await start_daemon(config, args=("--parts", "evaluate,notify"))
        assert judge.events("daemon.ready")[0]["parts"] == ["monitors", "evaluator", "notifier", "dispatcher"]
        [down] = await events.wait_for("website.down")
        assert down["url"] == target.url()
        assert not judge.events("probe.checked") and not prober.events("monitor.changed")
        assert await prober.stop() == 0 and await judge.stop() == 0
    finally:
        await events.stop()
        await target.stop()


async def test_the_redis_client_packs_commands_in_c_to_the_same_bytes(services: dict[str, str]) -> None:
    """The daemon's Redis client packs with hiredis (redis-py's asyncio one packs in Python): same bytes, same checks."""
    redis = await connect_redis(RedisSettings(url=services["UPTIMED_REDIS__URL"]))
    try:
        packed = redis.connection_pool.make_connection()
        assert type(packed).pack_command is not Connection.pack_command
        python = Connection()
        commands: list[tuple[object, ...]] = [
            ("SET", "k\u20acy", b"\x00\xff", 1.5, 10**20, -3, 0.1),
            ("CONFIG GET", "maxmemory"),  # a command of two words
            (b"CLIENT SETNAME", b"x"),
            ("XADD", "s", "*", "v", memoryview(b"ab"), "w", bytearray(b"cd")),
        ]
        for command in commands:
            assert b"".join(packed.pack_command(*command)) == b"".join(python.pack_command(*command)), command
        assert b"".join(packed.pack_commands(commands)) == b"".join(python.pack_commands(commands))
        for bad in (True, None, object()):
            with pytest.raises(DataError):
                python.pack_command("SET", "k", bad)
            with pytest.raises(DataError):
                packed.pack_command("SET", "k", bad)

        # And Redis reads them: a script with many arguments, a pipeline, a value that is not ASCII.
        key = f"uptimed-test:packing:{uuid.uuid4().hex}"
        count = redis.register_script("return #ARGV")
        assert await count(keys=[key], args=list(range(5_000))) == 5_000
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(key, "\u20ac\x00", px=10_000)
            pipe.get(key)
            assert (await pipe.execute())[1] == "\u20ac\x00".encode()
        await redis.delete(key)
    finally:
        await redis.aclose()


def test_packing_in_c_keeps_the_connection_the_url_chose() -> None:
    """TLS (``rediss://``) and Unix sockets stay what they are."""
    for url, kind in (
        ("rediss://127.0.0.1:1/0", SSLConnection),
        ("unix:///tmp/redis.sock", UnixDomainSocketConnection),
    ):
        chosen = aioredis.ConnectionPool.from_url(url).connection_class
        assert issubclass(packing_with_hiredis(chosen), kind)
