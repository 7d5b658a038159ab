"""`uptimed channels`: every channel with its distribution and fields, broken plugins with why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.channels.test_channel_registry import write_distribution


def test_lists_built_ins_plugins_and_broken_ones(installed_plugins: None, tmp_path: Path) -> None:
    write_distribution(tmp_path, "acme_channels", "2.3.4", {"pager": "acme_missing:Channel"}, {})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "uptimed", "channels"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("email", "webhook", "slack", "discord", "telegram"):
        assert f"\n{name}  (uptimed " in "\n" + out
    assert "ntfy  (uptimed-ntfy 0.1.0)" in out and "apprise  (uptimed-apprise 0.1.0)" in out
    assert "    botToken: string  [required, secret]" in out
    assert "pager  (acme_channels 2.3.4)  BROKEN: " in out and "ModuleNotFoundError" in out
