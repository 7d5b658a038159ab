"""The README's run command: the demo shows a down and an up notification."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, SERVICES

ERROR_LINE = re.compile(r"\[(error|critical)\s*\]|\"level\": \"(error|critical)\"|Traceback", re.IGNORECASE)

pytestmark = pytest.mark.kafka


def test_demo_shows_down_then_up(services) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--down-after", "2", "--down-for", "2"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    down = result.stdout.index(">>> notification: website.down")
    up = result.stdout.index(">>> notification: website.up")
    assert down < up
    assert "done: one down and one up notification" in result.stdout


def test_stopping_the_demo_stops_uptimed_too(services) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--down-after", "1", "--down-for", "1", "--stay"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in demo.stdout:  # blocks until the demo says uptimed keeps running
            if "uptimed keeps running" in line:
                break
        daemon_pids = subprocess.run(
            ["pgrep", "-P", str(demo.pid), "-f", "uptimed run"], capture_output=True, text=True, check=False
        ).stdout.split()
        assert daemon_pids, "the demo's uptimed is not its child"
        demo.terminate()
        assert demo.wait(timeout=60) == 143
        for pid in daemon_pids:
            assert not Path(f"/proc/{pid}").exists(), f"uptimed {pid} outlived the demo"
    finally:
        if demo.poll() is None:
            demo.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fresh_broker(services: dict[str, str]) -> Iterator[dict[str, str]]:
    """A Kafka broker that has never run (as after a fresh clone), on its own ports, stopped afterwards.

    It reuses the session broker's jars, so nothing is fetched again.
    """
    data = Path(os.environ.get("UPTIMED_DATA_DIR", ROOT / ".data")).resolve()
    libs = next((data / "kafka").glob("libs-*/.complete")).parent
    folder = ROOT / ".data" / f"test-{uuid.uuid4().hex[:8]}"
    (folder / "kafka").mkdir(parents=True)
    (folder / "kafka" / libs.name).symlink_to(libs)
    env = {
        **os.environ,
        "UPTIMED_DATA_DIR": str(folder),
        "UPTIMED_KAFKA_PORT": str(free_port()),
        "UPTIMED_KAFKA_CONTROLLER_PORT": str(free_port()),
    }
    subprocess.run(
        [sys.executable, str(SERVICES), "up", "kafka"], env=env, check=True, capture_output=True, timeout=180
    )
    try:
        yield env
    finally:
        subprocess.run(
            [sys.executable, str(SERVICES), "down", "kafka"], env=env, check=False, capture_output=True, timeout=120
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_the_demo_on_a_broker_that_never_ran_prints_no_error_line(fresh_broker: dict[str, str]) -> None:
    # A fresh clone's first `make demo`: the consumer groups meet a broker whose offsets topic does not exist yet.
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--down-after", "2", "--down-for", "2"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=fresh_broker,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "done: one down and one up notification" in result.stdout
    assert [line for line in output.splitlines() if ERROR_LINE.search(line)] == []
