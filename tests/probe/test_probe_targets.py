"""Probes of users' monitors connect only where the target policy allows: after DNS, on every redirect."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.probe.conftest import make_monitor
from uptimed.check import CheckStatus, ErrorClass
from uptimed.probe.base import policed_resolve, resolve_any
from uptimed.probe.http import make_session
from uptimed.probe.kinds import run_probe
from uptimed.rules.targets import TargetPolicy

# 127.0.0.2 plays a host on an allowed network; 127.0.0.1 (loopback) stays refused.
ALLOWED = TargetPolicy(allow_networks=(ipaddress.ip_network("127.0.0.2/32"),))


@pytest.fixture
async def servers() -> AsyncIterator[dict[str, int]]:
    """An internal page on 127.0.0.1, and on 127.0.0.2 a page that redirects to it."""

    async def secret(_: web.Request) -> web.Response:
        return web.json_response({"SecretAccessKey": "wJalrXUtnFEMI"})

    async def fine(_: web.Request) -> web.Response:
        return web.Response(text="fine")

    internal = web.Application()
    internal.router.add_get("/secret", secret)
    ports: dict[str, int] = {}
    runners = []
    for host, app in (("127.0.0.1", internal), ("127.0.0.2", web.Application())):
        if host == "127.0.0.2":

            async def redirect(request: web.Request) -> web.Response:
                raise web.HTTPFound(f"http://127.0.0.1:{ports['127.0.0.1']}/secret")

            app.router.add_get("/moved", redirect)
            app.router.add_get("/ok", fine)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        ports[host] = runner.addresses[0][1]
        runners.append(runner)
    yield ports
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def policed() -> AsyncIterator[aiohttp.ClientSession]:
    session = make_session(limit=10, policy=ALLOWED)
    yield session
    await session.close()


async def probe(session: aiohttp.ClientSession, target: str, **fields: object) -> tuple[CheckStatus, str | None]:
    result = await run_probe(
        make_monitor(target, **fields), region="r", session=session, resolve=policed_resolve(ALLOWED)
    )  # type: ignore[arg-type]
    return result.status, result.error


async def test_loopback_metadata_and_localhost_are_refused_naming_the_setting(
    policed: aiohttp.ClientSession, servers: dict[str, int]
) -> None:
    for target in (
        f"http://127.0.0.1:{servers['127.0.0.1']}/secret",
        f"http://localhost:{servers['127.0.0.1']}/secret",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        f"http://[::ffff:127.0.0.1]:{servers['127.0.0.1']}/secret",
    ):
        status, error = await probe(policed, target, json_path="SecretAccessKey", json_equals="x")
        assert status is CheckStatus.DOWN, target
        assert error is not None and "refused by the target policy" in error, (target, error)
        assert "[security] allow_networks" in error
        assert "wJalr" not in error


async def test_a_redirect_from_an_allowed_target_to_loopback_is_refused(
    policed: aiohttp.ClientSession, servers: dict[str, int]
) -> None:
    assert (await probe(policed, f"http://127.0.0.2:{servers['127.0.0.2']}/ok"))[0] is CheckStatus.UP
    status, error = await probe(
        policed, f"http://127.0.0.2:{servers['127.0.0.2']}/moved", json_path="SecretAccessKey", json_equals="x"
    )
    assert status is CheckStatus.DOWN
    assert (
        error
        == f"refused by the target policy: 127.0.0.1:{servers['127.0.0.1']} is a loopback address; allow it with [security] allow_networks"
    )


async def test_the_session_of_config_file_monitors_reaches_loopback(servers: dict[str, int]) -> None:
    session = make_session(limit=10)
    try:
        result = await run_probe(
            make_monitor(f"http://127.0.0.1:{servers['127.0.0.1']}/secret"),
            region="r",
            session=session,
            resolve=resolve_any,
        )
    finally:
        await session.close()
    assert result.status is CheckStatus.UP


async def test_tcp_monitors_cannot_scan_internal_ports(servers: dict[str, int]) -> None:
    session = make_session(limit=10)
    try:
        for target, allowed in (
            (f"127.0.0.1:{servers['127.0.0.1']}", False),
            (f"localhost:{servers['127.0.0.1']}", False),
            (f"127.0.0.2:{servers['127.0.0.2']}", True),
        ):
            result = await run_probe(
                make_monitor(target, kind="tcp"), region="r", session=session, resolve=policed_resolve(ALLOWED)
            )
            assert (result.status is CheckStatus.UP) is allowed, (target, result.error)
            if not allowed:
                assert result.error_class is ErrorClass.CONNECT
                assert result.error is not None and "refused by the target policy" in result.error
            trusted = await run_probe(
                make_monitor(target, kind="tcp"), region="r", session=session, resolve=resolve_any
            )
            assert trusted.status is CheckStatus.UP
    finally:
        await session.close()


@pytest.mark.parametrize(
    ("kind", "target", "options"),
    [
        ("tls", "127.0.0.1:8443", None),
        ("postgres", "127.0.0.1:5999", None),
        ("redis", "localhost:6999", None),
        ("ping", "127.0.0.1", None),
        ("dns", "shop.example.com", {"server": "127.0.0.1:5353"}),
    ],
)
async def test_every_kind_that_connects_is_held_to_the_policy(
    kind: str, target: str, options: dict[str, object] | None
) -> None:
    """Each built-in kind reaches its target through the check's resolve, the one place the policy applies."""
    monitor = make_monitor(target, kind=kind, options=options)
    result = await run_probe(monitor, region="r", resolve=policed_resolve(ALLOWED))
    assert result.status is CheckStatus.DOWN and result.error_class is ErrorClass.CONNECT, result
    assert result.error is not None and result.error.startswith("refused by the target policy: 127.0.0.1:"), (
        result.error
    )
    assert "is a loopback address" in result.error and result.error.endswith("allow it with [security] allow_networks")
