"""The README's run command: the demo shows a down and an up notification."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT


def test_demo_shows_down_then_up(services) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--down-after", "2", "--down-for", "2"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    down = result.stdout.index(">>> notification: website.down")
    up = result.stdout.index(">>> notification: website.up")
    assert down < up
    assert "done: one down and one up notification" in result.stdout
