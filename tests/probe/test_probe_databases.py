"""The postgres and redis kinds against the project's own PostgreSQL and Redis (scripts/services).

Both services let the test user in without a password, so each test that
needs one makes a role of its own that must give one: a PostgreSQL role with
a scram-sha-256 line of its own at the top of pg_hba.conf (removed after),
a Redis ACL user (deleted after).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.probe.conftest import make_monitor
from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.monitor import REVEAL_SECRETS, Monitor, MonitorFields
from uptimed.probe.kinds import run_probe


@dataclass(frozen=True)
class Login:
    target: str
    user: str
    password: str
    database: str = "postgres"


@pytest.fixture
async def postgres_login(services: dict[str, str]) -> AsyncIterator[Login]:
    """A role that must sign in with its password (scram-sha-256), for this test alone."""
    dsn = services["UPTIMED_DATABASE__DSN"]
    parts = urlsplit(dsn)
    user, password = f"kind_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    admin = await asyncpg.connect(dsn)
    hba = Path(await admin.fetchval("SHOW hba_file"))
    before = hba.read_text()
    line = f"host all {user} 127.0.0.1/32 scram-sha-256\n"
    try:
        await admin.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        with hba.open("r+") as file:  # in place: the file keeps its owner
            file.write(line + before)
        await admin.fetchval("SELECT pg_reload_conf()")
        yield Login(f"{parts.hostname}:{parts.port}", user, password)
    finally:
        with hba.open("r+") as file:
            file.write(before)
            file.truncate()
        await admin.fetchval("SELECT pg_reload_conf()")
        await admin.execute(f"DROP ROLE IF EXISTS {user}")
        await admin.close()


async def postgres_check(login: Login, **options: Any) -> CheckResult:
    values = {"user": login.user, "password": login.password, "database": login.database, **options}
    return await run_probe(make_monitor(login.target, kind="postgres", options=values), region="eu-west")


async def test_postgres_sign_in_and_query_with_the_round_trip_time(postgres_login: Login) -> None:
    connected = await postgres_check(postgres_login)
    queried = await postgres_check(postgres_login, query="SELECT 40 + 2", expected="42")

    assert connected.status is CheckStatus.UP, connected.error
    assert connected.message == f"signed in as {postgres_login.user}"
    assert queried.status is CheckStatus.UP, queried.error
    assert queried.message is not None and queried.message.endswith("the query answered 42")
    assert queried.response_time_ms is not None and 0 < queried.response_time_ms < 5000


async def test_postgres_a_wrong_answer_a_failing_query_and_a_wrong_password(postgres_login: Login) -> None:
    wrong = await postgres_check(postgres_login, query="SELECT 'degraded'", expected="ok")
    failing = await postgres_check(postgres_login, query="SELECT * FROM no_such_table")
    refused = await postgres_check(postgres_login, password="not-the-password")

    assert (wrong.error_class, wrong.error) == (ErrorClass.ANSWER, "the query answered degraded, expected 'ok'")
    assert failing.error_class is ErrorClass.ANSWER
    assert failing.error == 'the query failed: relation "no_such_table" does not exist'
    assert refused.status is CheckStatus.DOWN and refused.error_class is ErrorClass.AUTH
    assert refused.error == f'sign-in refused: password authentication failed for user "{postgres_login.user}"'
    assert "not-the-password" not in refused.model_dump_json()


async def test_postgres_a_closed_port(closed_port: int) -> None:
    result = await run_probe(make_monitor(f"127.0.0.1:{closed_port}", kind="postgres", options={}), region="eu-west")
    assert (result.error_class, result.error) == (
        ErrorClass.CONNECT,
        f"cannot connect to 127.0.0.1:{closed_port}: connection refused",
    )


@pytest.fixture
async def redis_login(services: dict[str, str]) -> AsyncIterator[Login]:
    """An ACL user with a password, for this test alone."""
    url = services["UPTIMED_REDIS__URL"]
    parts = urlsplit(url)
    user, password = f"kind-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    admin = aioredis.from_url(url)
    await admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~kind:*", "+@all")
    await admin.set(f"kind:{user}", "ready")
    try:
        yield Login(f"{parts.hostname}:{parts.port}", user, password)
    finally:
        await admin.delete(f"kind:{user}")
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


async def redis_check(login: Login, **options: Any) -> CheckResult:
    values = {"username": login.user, "password": login.password, **options}
    return await run_probe(make_monitor(login.target, kind="redis", options=values), region="eu-west")


async def test_redis_ping_and_a_command_with_its_expected_reply(redis_login: Login) -> None:
    pinged = await redis_check(redis_login)
    got = await redis_check(redis_login, command=f"GET kind:{redis_login.user}", expected="ready")
    missing = await redis_check(redis_login, command="GET kind:nothing", expected="ready")

    assert pinged.status is CheckStatus.UP, pinged.error
    assert pinged.message == "PING answered PONG"
    assert pinged.response_time_ms is not None and pinged.response_time_ms > 0
    assert got.status is CheckStatus.UP, got.error
    assert (missing.error_class, missing.error) == (ErrorClass.ANSWER, "GET answered (nil), expected 'ready'")


async def test_redis_a_wrong_password_a_refused_command_and_a_closed_port(redis_login: Login, closed_port: int) -> None:
    refused = await redis_check(redis_login, password="not-the-password")
    forbidden = await redis_check(redis_login, command="GET other:key")
    closed = await run_probe(make_monitor(f"127.0.0.1:{closed_port}", kind="redis", options={}), region="eu-west")

    assert refused.status is CheckStatus.DOWN and refused.error_class is ErrorClass.AUTH, refused.error
    assert "not-the-password" not in refused.model_dump_json()
    assert forbidden.status is CheckStatus.DOWN and forbidden.error_class is ErrorClass.AUTH, forbidden.error
    assert (closed.error_class, closed.error) == (
        ErrorClass.CONNECT,
        f"cannot connect to 127.0.0.1:{closed_port}: connection refused",
    )


def test_credentials_are_secrets_masked_when_shown_and_kept_for_the_probes() -> None:
    fields = MonitorFields.model_validate(
        {"name": "db", "kind": "postgres", "target": "db.internal", "postgres": {"password": "correct-horse-battery"}}
    )

    shown = fields.model_dump_json()
    queued = Monitor.model_validate_json(
        Monitor(id=1, owner_id=1, **fields.model_dump()).model_dump_json(context=REVEAL_SECRETS)
    )

    assert "correct-horse-battery" not in shown and '"password":"…tery"' in shown
    assert queued.options is not None and queued.options.password.get_secret_value() == "correct-horse-battery"  # type: ignore[attr-defined]
    assert "correct-horse-battery" not in repr(fields)
