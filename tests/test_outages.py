"""PostgreSQL, Redis and Kafka restarted under a running daemon: it says so briefly, then works again.

Each test stops one of this test session's own services (scripts/services,
with the ports of this checkout) and starts it again before it ends, waiting
until it is usable, so the tests after it find it as it was.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.notify.test_notify_delivery import receiver  # noqa: F401 - fixture
from tests.support import SERVICES, DaemonProcess, Stack, Target, WebhookReceiver, to_toml
from tests.test_monitoring import monitor, target  # noqa: F401 - fixture


async def services(command: str, name: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVICES), command, name, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


@asynccontextmanager
async def outage(name: str) -> AsyncIterator[None]:
    """``name`` (postgres, redis, kafka) is down inside the block, and up and usable after it, whatever happens."""
    await services("down", name)
    try:
        yield
    finally:
        await services("up", name)


def config(stack: Stack, target: Target, receiver: WebhookReceiver, *, level: str = "info") -> str:
    sections = stack.sections()
    sections["api"] = {"enabled": True, "host": "127.0.0.1", "port": 0}
    sections["log"]["level"] = level
    sections["notify"] = {"backoff_initial": 0.3, "delivery_timeout": 5}
    hook = (
        '[[integrations]]\nowner = "alice"\nkey = "hook"\ntype = "webhook"\n'
        f'config = {{ webhookUrl = "{receiver.url("/hook")}" }}\n'
    )
    return to_toml(sections) + "\n" + monitor(target.url(), failure_threshold=2, success_threshold=1) + hook


async def readiness(daemon: DaemonProcess) -> httpx.AsyncClient:
    listening = await daemon.wait_for("api.listening")
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{listening['port']}", timeout=5)


async def until_ready(client: httpx.AsyncClient, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/readyz")
        if response.status_code == 200:
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready within {timeout} s: {response.json()}")
        await asyncio.sleep(0.1)


async def until_not_ready(client: httpx.AsyncClient, naming: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/readyz")
        if response.status_code == 503 and naming in response.json()["problems"]:
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz did not name {naming} within {timeout} s: {response.json()}")
        await asyncio.sleep(0.05)


async def alerts_again(target: Target, receiver: WebhookReceiver) -> None:
    """The whole pipeline works: a failure and a recovery are probed, evaluated, published, recorded and delivered."""
    for status, event in ((500, "website.down"), (200, "website.up")):
        before = len(receiver.to("/hook"))
        target.status = status
        [*_, last] = await receiver.wait_for("/hook", before + 1, timeout=60)
        assert last.json()["event"] == event


def loud(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("level") in ("warning", "error", "critical")]


def errors(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("level") in ("error", "critical")]


RESIDUE = ("another operation is in progress", "Unclosed", "Task exception was never retrieved")


def fault(name: str):
    """``postgres``, ``redis``, ``kafka``: stopped and started again; ``postgres-hung``: SIGSTOP, then SIGCONT."""
    return frozen_postgres() if name == "postgres-hung" else outage(name)


@pytest.mark.parametrize(
    ("name", "service", "seconds"),
    [
        ("postgres", "postgresql", 3),
        ("redis", "redis", 3),
        ("kafka", "kafka", 3),
        # Hung long enough for a batch deadline (8 s) and the probes' timeout to cut queries short.
        ("postgres-hung", "postgresql", 8),
    ],
)
async def test_a_service_out_of_reach_is_named_then_every_part_works_again_without_residue(
    topics: Stack, target: Target, receiver: WebhookReceiver, start_daemon, name: str, service: str, seconds: float
) -> None:
    daemon = await start_daemon(config(topics, target, receiver))
    async with await readiness(daemon) as client:
        await until_ready(client, timeout=30)
        await alerts_again(target, receiver)
        before = len(daemon.lines)

        async with fault(name):
            down = await until_not_ready(client, service, timeout=8)
            await asyncio.sleep(seconds)  # the outage goes on a while
        during = len(daemon.lines)

        back = await until_ready(client, timeout=30)
        await daemon.wait_for("service.back", service=service, timeout=10)
        await alerts_again(target, receiver)

    outage_lines, after = daemon.lines[before:during], daemon.lines[during:]
    assert down["parts"][service] is False and down["problems"][service].startswith("unreachable")
    assert all(back["parts"].values())
    assert errors(daemon.lines[before:]) == [], errors(daemon.lines[before:])
    assert {line["event"] for line in loud(after)} <= {"service.back", "part.interrupted"}, loud(after)
    assert not [line for line in daemon.raw if any(text in line for text in RESIDUE)]
    assert len(loud(outage_lines)) <= 8, [line.get("event") for line in loud(outage_lines)]
    print(
        f"{name}: {len(loud(outage_lines))} warning lines during the outage:",
        sorted({str(line.get("event")) for line in loud(outage_lines)}),
    )


async def test_broker_down_30_s_is_a_handful_of_lines(
    topics: Stack, target: Target, receiver: WebhookReceiver, start_daemon
) -> None:
    daemon = await start_daemon(config(topics, target, receiver))
    async with await readiness(daemon) as client:
        await until_ready(client, timeout=30)
        before = len(daemon.lines)
        async with outage("kafka"):
            await asyncio.sleep(30)  # the outage under test
        await daemon.wait_for("service.back", service="kafka", timeout=30)
        await until_ready(client, timeout=30)
        await alerts_again(target, receiver)

    lines = daemon.lines[before:]
    about_it = [
        line for line in lines if line.get("service") == "kafka" or str(line.get("logger", "")).startswith("aiokafka")
    ]
    print(
        f"broker down 30 s: {len(about_it)} lines about it, {len(loud(lines))} at warning or above:",
        [line["event"] for line in about_it],
        [line["event"] for line in loud(lines)],
    )
    assert len(about_it) <= 5 and len(loud(lines)) <= 6
    assert [line["event"] for line in about_it].count("service.back") == 1
    assert errors(lines) == []


@asynccontextmanager
async def frozen_postgres() -> AsyncIterator[None]:
    """This session's PostgreSQL stopped (SIGSTOP: connections hang rather than fail) inside the block."""
    import os
    import signal
    from pathlib import Path

    data = Path(os.environ.get("UPTIMED_DATA_DIR", SERVICES.parent.parent / ".data")).resolve()
    postmaster = int((data / "postgres" / "data" / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    pids = [postmaster, *map(int, children)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
