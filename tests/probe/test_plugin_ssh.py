"""plugins/uptimed-ssh, installed as a real distribution: listed by ``uptimed kinds``, in the API and the form,
and its checks run by ``uptimed run`` all the way to a webhook notification.

The SSH server is a local asyncio server that sends an identification line,
whichever one the test sets.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.probe.conftest import make_monitor
from tests.support import Stack, WebhookReceiver, install_plugins, to_toml
from uptimed.app import create_app
from uptimed.channels.registry import default_registry
from uptimed.check import CheckStatus, ErrorClass
from uptimed.config import DatabaseSettings
from uptimed.probe.kinds import default_kinds, run_probe
from uptimed.store import api_tokens, users
from uptimed.store.database import connect


@pytest.fixture(scope="module")
def installed_ssh() -> Iterator[None]:
    install_plugins({"uptimed-ssh": "uptimed_ssh"})
    yield


@dataclass
class SshServer:
    port: int
    banner: bytes = b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n"


@pytest.fixture
async def ssh_server() -> AsyncIterator[SshServer]:
    state = SshServer(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(state.banner)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    yield state
    server.close()
    await server.wait_closed()


def test_uptimed_kinds_lists_the_plugin_beside_the_built_ins_and_broken_ones(
    installed_ssh: None, tmp_path: Path
) -> None:
    info = tmp_path / "acme_kinds-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme_kinds\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[uptimed.kinds]\nsnmp = acme_missing:SnmpKind\n")
    env = {"PYTHONPATH": str(tmp_path)}

    result = subprocess.run(
        [sys.executable, "-m", "uptimed", "kinds"], capture_output=True, text=True, timeout=60, env={**_env(), **env}
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("http", "tcp", "ping", "dns", "tls", "postgres", "redis", "heartbeat"):
        assert f"\n{name}  " in "\n" + out and f"{name}  " in out
    assert "ssh  SSH  (uptimed-ssh 0.1.0)" in out
    assert "    target: host:port of the SSH server (22 when left out): bastion.example.com" in out
    assert "    expected_software: string | null = None" in out
    assert "heartbeat  Heartbeat (cron job check-in)  (uptimed 0.1.0)  [pushed: /ping/<token>]" in out
    assert "    password: string | null = None  [secret]" in out  # postgres
    assert "snmp  (acme_kinds 1.0)  BROKEN: import failed: ModuleNotFoundError" in out


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


async def test_its_checks_report_the_banner_or_what_is_wrong(installed_ssh: None, ssh_server: SshServer) -> None:
    monitor = make_monitor(f"127.0.0.1:{ssh_server.port}", kind="ssh", options={"expected_software": "OpenSSH_9"})

    up = await run_probe(monitor, region="eu-west")
    ssh_server.banner = b"SSH-2.0-dropbear_2022.83\r\n"
    other = await run_probe(monitor, region="eu-west")
    ssh_server.banner = b"HTTP/1.1 400 Bad Request\r\n\r\n"
    not_ssh = await run_probe(monitor, region="eu-west")

    assert up.status is CheckStatus.UP and up.message == "SSH-2.0-OpenSSH_9.6p1 Debian-4"
    assert (other.error_class, other.error) == (ErrorClass.ANSWER, "runs dropbear_2022.83, expected OpenSSH_9")
    assert (not_ssh.error_class, not_ssh.error) == (
        ErrorClass.ANSWER,
        "not an SSH server: it said 'HTTP/1.1 400 Bad Request'",
    )
    assert default_kinds().get("ssh").distribution == "uptimed-ssh"


async def test_the_api_and_the_form_offer_it_with_no_page_code(
    installed_ssh: None, stack: Stack, site: Any, alice: Any
) -> None:
    pool = await connect(DatabaseSettings(dsn=stack.dsn))
    http = httpx.AsyncClient()

    async def readiness() -> dict[str, bool]:
        return {}

    app = create_app(pool=pool, registry=default_registry(), settings=stack.settings(), http=http, readiness=readiness)
    user = await users.create(pool, "carol", "carol@example.com")
    token, _ = await api_tokens.create(pool, user.id, "tests")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://uptimed.test",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            kinds = {k["name"]: k for k in (await client.get("/api/v1/kinds")).json()}
            schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
            created = await client.post(
                "/api/v1/monitors",
                json={
                    "name": "bastion",
                    "kind": "ssh",
                    "target": "bastion.example.com",
                    "ssh": {"expected_software": "OpenSSH"},
                },
            )
            refused = await client.post(
                "/api/v1/monitors", json={"name": "bastion", "kind": "ssh", "target": "a:b", "ssh": {"banner": "x"}}
            )
    finally:
        await http.aclose()
        await pool.close()

    assert kinds["ssh"]["distribution"] == "uptimed-ssh" and kinds["ssh"]["title"] == "SSH"
    assert [f["name"] for f in kinds["ssh"]["fields"]] == ["expected_software"]
    assert "ssh" in schema["MonitorIn"]["properties"] and "ssh" in schema["MonitorIn"]["properties"]["kind"]["enum"]
    assert created.status_code == 201, created.text
    assert created.json()["ssh"] == {"expected_software": "OpenSSH"}
    assert refused.status_code == 422
    fields = {problem["field"] for problem in refused.json()["detail"]}
    assert {"ssh.banner"} <= fields

    form = await alice.get("/monitors/new")
    assert '<option value="ssh">SSH</option>' in form.text
    assert 'data-channel="ssh"' in form.text and 'name="ssh.expected_software"' in form.text
    saved = await alice.post(
        "/monitors",
        {
            "name": "bastion",
            "kind": "ssh",
            "target": "bastion.example.com",
            "interval": "1m",
            "timeout": "10s",
            "failure_threshold": "3",
            "success_threshold": "2",
            "ssh.expected_software": "OpenSSH_9",
        },
    )
    assert saved.status_code == 303, saved.text
    stored = await site.pool.fetchval("SELECT options FROM monitors WHERE name = 'bastion' AND owner_id = $1", alice.id)
    assert stored["ssh"] == {"expected_software": "OpenSSH_9"}


async def test_a_plugin_kind_runs_end_to_end_to_a_notification(
    installed_ssh: None, stack: Stack, start_daemon: Any, ssh_server: SshServer
) -> None:
    receiver = await WebhookReceiver().start()
    monitors = f"""
[[monitors]]
owner = "ops"
name = "bastion"
kind = "ssh"
target = "127.0.0.1:{ssh_server.port}"
interval = "1s"
timeout = "1s"
failure_threshold = 2
success_threshold = 1
ssh = {{ expected_software = "OpenSSH_9" }}

[[integrations]]
owner = "ops"
key = "hook"
type = "webhook"
config = {{ webhookUrl = "{receiver.url("/hook")}" }}
"""
    try:
        daemon = await start_daemon(to_toml(stack.sections()) + monitors)
        await daemon.wait_for("probe.checked", count=2, status="up")
        ssh_server.banner = b"SSH-2.0-dropbear_2022.83\r\n"  # someone replaced the server
        [request] = await receiver.wait_for("/hook", timeout=30)
    finally:
        await receiver.stop()
    sent = json.loads(request.body)
    assert (sent["event"], sent["url"]) == ("website.down", f"127.0.0.1:{ssh_server.port}")
    assert sent["data"]["reason"] == "answer: runs dropbear_2022.83, expected OpenSSH_9"
    assert sent["data"]["name"] == "bastion"
