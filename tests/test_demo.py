"""The README's run command: the demo shows a down and an up notification."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.kafka


def test_demo_shows_down_then_up(services) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--down-after", "2", "--down-for", "2"],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    down = result.stdout.index(">>> notification: website.down")
    up = result.stdout.index(">>> notification: website.up")
    assert down < up
    assert "done: one down and one up notification" in result.stdout


def test_stopping_the_demo_stops_uptimed_too(services) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--down-after", "1", "--down-for", "1", "--stay"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
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
