"""Which Kafka release a broker runs, as uptimed tells it: logged by `uptimed run`, reported by `check-config --connect`.

Kafka has no request that names its release; uptimed reads it from the
broker's ApiVersions answer. tests/bus/kafka_api_versions.json holds those answers
as recorded from real brokers 3.8.1 to 4.4.0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, SERVICES, DaemonProcess, Stack, kafka_version, to_toml

RECORDED = json.loads((Path(__file__).parent / "kafka_api_versions.json").read_text())

UNSUPPORTED_KAFKA = "3.8.1"
"""A real broker older than the oldest supported one (3.9), for the warning."""


def api_versions(release: str) -> dict[int, tuple[int, int]]:
    return {int(key): (low, high) for key, (low, high) in RECORDED[release].items()}


@pytest.mark.parametrize(
    ("recorded", "told"),
    [
        ("3.8.1", "older than 3.9"),
        ("3.9.1", "3.9"),
        ("4.0.2", "4.0"),
        ("4.1.2", "4.1"),
        ("4.2.1", "4.2"),
        ("4.3.1", "4.3"),
        ("4.4.0", "4.4 or newer"),
    ],
)
def test_each_recorded_broker_is_told_apart_by_its_api_versions(recorded: str, told: str) -> None:
    from uptimed.bus.kafka import BrokerRelease

    release = BrokerRelease.from_api_versions(api_versions(recorded))
    assert str(release) == told
    assert release.supported == (recorded != "3.8.1")


def told(version: str) -> str:
    """What uptimed says of a broker of this release (the newest it knows reads "or newer")."""
    from uptimed.bus.kafka import RELEASE_MARKS

    major, minor = (int(part) for part in version.split(".")[:2])
    return f"{major}.{minor}" + (" or newer" if (major, minor) == RELEASE_MARKS[0][0] else "")


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPTIMED_")}
    return subprocess.run(
        [sys.executable, "-m", "uptimed", "check-config", "--connect", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.kafka
def test_check_config_connect_reports_each_service_and_the_brokers_release(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "uptimed.toml"
    path.write_text(stack.toml())
    result = check_config(path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{path}: OK")
    assert lines[1].startswith("postgresql: OK (PostgreSQL ")
    assert lines[2].startswith("redis: OK (Redis ")
    assert lines[3] == f"kafka: OK (1 broker, Kafka {told(kafka_version())})"
    assert "warning" not in result.stderr


def test_check_config_connect_names_the_service_out_of_reach(stack: Stack, tmp_path: Path) -> None:
    sections = stack.sections()
    sections["redis"] = {"url": "redis://127.0.0.1:1/0", "connect_timeout": 2}
    path = tmp_path / "uptimed.toml"
    path.write_text(to_toml(sections))
    result = check_config(path)
    assert result.returncode == 1
    assert "postgresql: OK" in result.stdout and "uptimed: redis: cannot connect" in result.stderr


@pytest.fixture(scope="module")
def unsupported_broker(services: dict[str, str]) -> Iterator[str]:
    """A Kafka 3.8 broker of its own (UPTIMED_KAFKA_PORT + 40), stopped afterwards."""
    port = int(os.environ.get("UPTIMED_KAFKA_PORT", "29092")) + 40
    env = {
        **os.environ,
        "UPTIMED_KAFKA_VERSION": UNSUPPORTED_KAFKA,
        "UPTIMED_KAFKA_PORT": str(port),
        "UPTIMED_KAFKA_CONTROLLER_PORT": str(port + 1),
        "UPTIMED_KAFKA_HEAP": "-Xms128m -Xmx384m",
    }
    subprocess.run([sys.executable, str(SERVICES), "up", "kafka"], env=env, check=True, cwd=ROOT)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([sys.executable, str(SERVICES), "down", "kafka"], env=env, check=False, cwd=ROOT)


async def test_a_broker_older_than_3_9_is_warned_about_naming_the_supported_range(
    stack: Stack, unsupported_broker: str, tmp_path: Path
) -> None:
    from uptimed.bus.kafka import SUPPORTED_BROKERS

    old = Stack(dsn=stack.dsn, redis_url=stack.redis_url, bootstrap=unsupported_broker, prefix=stack.prefix)
    path = tmp_path / "uptimed.toml"
    path.write_text(old.toml())
    result = check_config(path)
    assert result.returncode == 0, result.stderr
    assert "kafka: OK (1 broker, Kafka older than 3.9)" in result.stdout
    assert result.stderr.strip() == (
        f"uptimed: warning: kafka: a broker runs Kafka older than 3.9; uptimed supports {SUPPORTED_BROKERS}"
    )

    # Started by hand, not with start_daemon: this test needs no second run on the oldest supported broker.
    config = tmp_path / "run.toml"
    config.write_text(old.toml())
    daemon = await DaemonProcess(config).start()
    try:
        await daemon.wait_for("daemon.ready")
        warning = daemon.events("kafka.broker_unsupported")
        assert [(w["version"], w["supported"], w["level"]) for w in warning] == [
            ("older than 3.9", SUPPORTED_BROKERS, "warning")
        ]
        assert await daemon.stop() == 0
    finally:
        await daemon.kill()
