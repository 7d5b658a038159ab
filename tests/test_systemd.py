"""`uptimed run` under a stand-in for systemd: a real unix datagram socket as NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import Stack, Target
from tests.test_monitoring import monitor


class FakeSystemd:
    """Receives sd_notify datagrams like systemd does."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="uptimed-sd-", dir="/tmp"))
        self.path = self.folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)
        self.messages: list[dict[str, str]] = []

    async def next(self, timeout: float = 30.0) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), timeout)
        message = dict(line.split("=", 1) for line in data.decode().splitlines())
        self.messages.append(message)
        return message

    async def until(self, key: str, timeout: float = 30.0) -> dict[str, str]:
        """The next message carrying ``key`` (others are kept in ``messages``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            message = await self.next(max(0.01, deadline - asyncio.get_running_loop().time()))
            if key in message:
                return message

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)
        self.folder.rmdir()


@pytest.fixture
async def systemd() -> AsyncIterator[FakeSystemd]:
    fake = FakeSystemd()
    yield fake
    fake.close()


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = await Target().start()
    yield server
    await server.stop()


async def test_ready_watchdog_reload_and_stop(
    stack: Stack, systemd: FakeSystemd, target: Target, start_daemon, tmp_path
) -> None:
    env = {"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "1000000"}
    daemon = await start_daemon(stack.toml(monitor(target.url("/a"), name="a")), env=env)
    ready = await systemd.until("READY")
    assert ready["READY"] == "1" and "1 monitors" in ready["STATUS"] and "regions default" in ready["STATUS"]

    # Pings at half the watchdog interval: at least three within two seconds.
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        ping = await systemd.until("WATCHDOG", timeout=2)
    assert loop.time() - started < 2.2
    assert ping["STATUS"].startswith("1 monitors") and "last check" in ping["STATUS"]

    # SIGHUP with a changed monitor list: RELOADING, READY, and the new monitor is checked.
    daemon.config.write_text(stack.toml(monitor(target.url("/a"), name="a") + monitor(target.url("/b"), name="b")))
    daemon.process.send_signal(signal.SIGHUP)
    reloading = await systemd.until("RELOADING")
    assert "MONOTONIC_USEC" in reloading
    assert (await systemd.until("READY"))["READY"] == "1"
    await daemon.wait_for("config.reloaded", monitors=2)
    await target.wait_until(lambda: target.count(path="/b") >= 1, timeout=20)

    # A broken file is rejected with check-config's message; the running config stays.
    daemon.config.write_text(stack.toml(monitor(target.url("/a"), name="a", interval="soon")))
    daemon.process.send_signal(signal.SIGHUP)
    rejected = await daemon.wait_for("config.reload_rejected")
    assert "monitors[0].interval" in rejected["error"] and "expected a duration" in rejected["error"]
    await systemd.until("READY")
    await target.wait_hits(1, path="/b", timeout=20)

    daemon.process.send_signal(signal.SIGTERM)
    assert "STOPPING" in await systemd.until("STOPPING")
    assert await asyncio.wait_for(daemon.process.wait(), 30) == 0


async def test_without_notify_socket_nothing_is_sent(stack: Stack, start_daemon) -> None:
    daemon = await start_daemon(stack.toml())
    assert not daemon.events("systemd.notify_failed")
    assert await daemon.stop() == 0


async def test_status_says_what_readiness_says_and_an_outage_does_not_stop_the_watchdog(
    stack: Stack, systemd: FakeSystemd, target: Target, start_daemon
) -> None:
    from tests.test_outages import outage

    env = {"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "1000000"}
    await start_daemon(stack.toml(monitor(target.url("/a"), name="a")), env=env)
    await systemd.until("READY")
    async with outage("redis"):
        while "redis unreachable" not in (ping := await systemd.until("WATCHDOG", timeout=5))["STATUS"]:
            pass
        assert ping["STATUS"].startswith("degraded: ")
    while not (ping := await systemd.until("WATCHDOG", timeout=5))["STATUS"].startswith("1 monitors"):
        pass


async def test_a_part_stalled_while_every_service_answers_withholds_the_watchdog(stack: Stack) -> None:
    import time

    from uptimed.channels.registry import default_registry
    from uptimed.daemon import Daemon, connected
    from uptimed.supervisor import Part, Supervisor
    from uptimed.watch import ServiceWatch

    async def never() -> None: ...

    settings = stack.settings()
    async with connected(settings) as connections:
        daemon = Daemon(settings, connections, watch=ServiceWatch(), registry=default_registry())
        stalled = Part("dispatcher", never, progress_bound=30)
        stalled.healthy, stalled.started_at = True, time.monotonic() - 31
        daemon.supervisor = Supervisor([stalled], watch=daemon.watch)
        daemon.watch.add("postgresql", never)

        assert daemon.stuck() == ["dispatcher"]
        assert daemon.status_now().startswith("degraded: dispatcher no progress for 31 s")
        daemon.watch._failed(daemon.watch._services["postgresql"], "OSError: refused")
        assert daemon.stuck() == []  # an outage explains it: restarting would not help
