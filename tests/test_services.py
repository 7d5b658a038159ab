"""scripts/services: idempotent up, status, down, and a clear failure."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import ROOT, SERVICES, kafka_version, pid_listening_on, services_script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def services(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SERVICES), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def own_services():
    """A second PostgreSQL and Redis in their own folder and ports, stopped afterwards."""
    # Under the checkout's data folder: PostgreSQL runs as its own user and
    # must be able to enter every parent folder (pytest's tmp_path is private).
    data = ROOT / ".data" / f"test-{uuid.uuid4().hex[:8]}"
    env = {
        "UPTIMED_DATA_DIR": str(data),
        "UPTIMED_PG_PORT": str(free_port()),
        "UPTIMED_REDIS_PORT": str(free_port()),
    }
    yield env
    services("down", "postgres", "redis", env=env)
    shutil.rmtree(data, ignore_errors=True)


def test_up_is_idempotent_and_down_stops_only_its_own(own_services: dict[str, str]) -> None:
    first = services("up", "postgres", "redis", env=own_services)
    assert first.returncode == 0, first.stderr
    assert "postgres: started" in first.stderr and "redis: started" in first.stderr

    started = time.monotonic()
    again = services("up", "postgres", "redis", env=own_services)
    assert again.returncode == 0, again.stderr
    assert "postgres: already running" in again.stderr and "redis: already running" in again.stderr
    assert time.monotonic() - started < 5

    status = services("status", "postgres", "redis", env=own_services)
    assert status.returncode == 0
    assert f"127.0.0.1:{own_services['UPTIMED_PG_PORT']}" in status.stdout
    assert f"127.0.0.1:{own_services['UPTIMED_REDIS_PORT']}" in status.stdout

    down = services("down", "postgres", "redis", env=own_services)
    assert down.returncode == 0, down.stderr
    status = services("status", "postgres", "redis", env=own_services)
    assert status.returncode == 1
    assert "postgres: stopped" in status.stdout and "redis: stopped" in status.stdout
    # The session's own stack was not touched.
    assert services("status", env={}).returncode == 0


@pytest.mark.kafka
async def test_the_session_stack_answers_with_the_configured_kafka(services: dict[str, str]) -> None:
    from uptimed.bus.kafka import broker_releases
    from uptimed.config import KafkaSettings

    configured = kafka_version()
    result = subprocess.run([sys.executable, str(SERVICES), "status"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert f"kafka: {configured} running" in result.stdout
    # The broker itself, asked over the protocol, is that release.
    bootstrap = services["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"]
    assert bootstrap.startswith("127.0.0.1:")
    releases = await broker_releases(KafkaSettings(bootstrap_servers=bootstrap))
    major, minor, _ = configured.split(".")
    assert {r.release for r in releases.values()} == {(int(major), int(minor))}
    # In the small profile: its JVM's native memory in two malloc arenas (README, "the small profile").
    broker = pid_listening_on(int(bootstrap.rsplit(":", 1)[1]))
    environment = Path(f"/proc/{broker}/environ").read_bytes().split(b"\0")
    assert b"MALLOC_ARENA_MAX=2" in environment, (
        "the broker was started without the small profile's malloc arenas (by an older scripts/services?): "
        "scripts/services down kafka && scripts/services up kafka"
    )


@pytest.mark.kafka
def test_another_kafka_version_on_the_same_port_is_refused_naming_the_running_one(services: dict[str, str]) -> None:
    versions = services_script().kafka_versions()
    running = kafka_version()
    other = versions["KAFKA_OLDEST_VERSION"] if running == versions["KAFKA_VERSION"] else versions["KAFKA_VERSION"]
    result = subprocess.run(
        [sys.executable, str(SERVICES), "up", "kafka"],
        env={**os.environ, "UPTIMED_KAFKA_VERSION": other},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    port = services["UPTIMED_KAFKA__BOOTSTRAP_SERVERS"].rsplit(":", 1)[1]
    assert f"port {port} is taken by the broker in " in result.stderr and f"kafka/{running}" in result.stderr
    # Each version keeps its own folder: the running broker's was not touched.
    assert subprocess.run([sys.executable, str(SERVICES), "status", "kafka"], capture_output=True).returncode == 0


def test_the_default_and_the_oldest_kafka_are_chosen_in_scripts_kafka_versions() -> None:
    from uptimed.bus.kafka import OLDEST_SUPPORTED, SUPPORTED_BROKERS

    versions = services_script().kafka_versions()
    default, oldest = versions["KAFKA_VERSION"], versions["KAFKA_OLDEST_VERSION"]
    assert default.startswith("4.") and oldest.startswith("3.9.")
    assert tuple(int(part) for part in oldest.split(".")[:2]) == OLDEST_SUPPORTED
    assert f"tested: {oldest} and {default}" in SUPPORTED_BROKERS
    # The pom holds no version of its own: scripts/services passes it.
    assert "<kafka.version>" not in (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
    assert (ROOT / "scripts" / "kafka" / "pom.xml").read_text().count("${kafka.version}") == 1


def test_a_service_that_cannot_start_is_named_with_its_log(own_services: dict[str, str], services) -> None:
    # The session's PostgreSQL already listens on this port.
    taken = services["UPTIMED_DATABASE__DSN"].rsplit(":", 1)[1].split("/")[0]
    env = {**own_services, "UPTIMED_PG_PORT": taken}
    result = subprocess.run(
        [sys.executable, str(SERVICES), "up", "postgres"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "postgres" in result.stderr
    assert str(Path(own_services["UPTIMED_DATA_DIR"]) / "postgres" / "postgres.log") in result.stderr


def test_kafka_storage_is_formatted_even_when_the_cluster_id_starts_with_a_dash(tmp_path: Path, services) -> None:
    # One id in 64 starts with "-" (a UUID in URL-safe base64); the storage
    # tool once read such an id as an option and the first start failed.
    script = services_script()
    kafka = script.Kafka()
    kafka.libs = script.DATA / "kafka" / f"libs-{kafka.version}"  # the session's jars, already fetched
    kafka.home = tmp_path
    node = script.KafkaNode(1, free_port(), free_port(), tmp_path)
    kafka.nodes = kafka.selected = [node]
    kafka.write_config(node)
    (tmp_path / "cluster-id").write_text("-Xc3BSBWSGm0HIvTvsXWRQ")

    kafka.format_storage([node])

    assert "cluster.id=-Xc3BSBWSGm0HIvTvsXWRQ" in (node.logdir / "meta.properties").read_text()
    assert not any(script.new_cluster_id().startswith("-") for _ in range(2_000))


def test_unknown_service_is_refused() -> None:
    result = subprocess.run([sys.executable, str(SERVICES), "up", "mysql"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown service 'mysql'" in result.stderr
