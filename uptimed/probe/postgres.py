"""The ``postgres`` kind: connect to a PostgreSQL server, optionally run a query and compare its answer."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from uptimed.channels.base import Secret
from uptimed.check import CheckResult, ErrorClass
from uptimed.monitor import Monitor
from uptimed.probe.base import CheckContext, host_port_problem, split_host_port
from uptimed.probe.tcp import describe_os_error

POSTGRES_PORT = 5432
_SHOWN_CHARS = 200


class PostgresOptions(BaseModel):
    """Options of a ``postgres`` monitor."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field("postgres", min_length=1, max_length=63, description="the role to sign in as")
    password: Secret | None = Field(None, description="its password; empty: none (trust or peer authentication)")
    database: str | None = Field(None, max_length=63, description="the database to connect to; empty: the user's")
    tls: Literal["disable", "prefer", "require"] = Field(
        "prefer", description="prefer: TLS when the server offers it; require: refuse without (not verified)"
    )
    query: str | None = Field(None, max_length=4096, description="a query to run, e.g. SELECT 1; empty: connect only")
    expected: str | None = Field(
        None, max_length=1024, description="what the first column of the query's first row must read, as text"
    )


class PostgresKind:
    """``postgres``: a sign-in (and a query) on a PostgreSQL server; response time is the whole round trip."""

    name = "postgres"
    title = "PostgreSQL"
    config_model = PostgresOptions
    target_help = "host:port of the server (5432 when left out): db.internal:5432"

    def target_problem(self, target: str) -> str | None:
        problem = host_port_problem(target, POSTGRES_PORT)
        return f"a postgres monitor needs host:port ({problem})" if problem else None

    async def check(self, monitor: Monitor, options: PostgresOptions, context: CheckContext) -> CheckResult:
        host, port = split_host_port(monitor.target, POSTGRES_PORT)
        connection: asyncpg.Connection | None = None
        try:
            async with asyncio.timeout(monitor.timeout):
                connection = await _connect(context, host, port, options, monitor.timeout)
                connected_ms = context.elapsed_ms()
                row = await connection.fetchrow(options.query) if options.query else None
        except TimeoutError:
            return context.down(ErrorClass.TIMEOUT, f"no answer within {monitor.timeout:g} s")
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
            return context.down(ErrorClass.AUTH, f"sign-in refused: {exc}")
        except asyncpg.InvalidCatalogNameError as exc:
            return context.down(ErrorClass.OTHER, str(exc))
        except asyncpg.PostgresError as exc:
            return context.down(ErrorClass.ANSWER, f"the query failed: {exc}")
        except OSError as exc:
            return context.down(ErrorClass.CONNECT, f"cannot connect to {host}:{port}: {describe_os_error(exc)}")
        except (asyncpg.InterfaceError, asyncpg.exceptions.ConnectionDoesNotExistError) as exc:
            return context.down(ErrorClass.CONNECT, f"the connection failed: {exc}")
        finally:
            if connection is not None:
                connection.terminate()  # no goodbye round trip: the check is over
        elapsed_ms = context.elapsed_ms()
        if not options.query:
            return context.up(response_time_ms=elapsed_ms, message=f"signed in as {options.user}")
        answer = _text(row[0] if row is not None and len(row) else None)
        message = f"connected in {connected_ms:.1f} ms; the query answered {answer}"
        if options.expected is not None and answer != options.expected:
            return context.down(
                ErrorClass.ANSWER,
                f"the query answered {answer}, expected {options.expected[:_SHOWN_CHARS]!r}",
                response_time_ms=elapsed_ms,
                message=message,
            )
        return context.up(response_time_ms=elapsed_ms, message=message)


async def _connect(
    context: CheckContext, host: str, port: int, options: PostgresOptions, timeout: float
) -> asyncpg.Connection:
    addresses = await context.addresses(host, port)
    last: OSError | None = None
    for address in addresses:
        try:
            return await asyncpg.connect(
                host=address,
                port=port,
                user=options.user,
                password=options.password.get_secret_value() if options.password else None,
                database=options.database or options.user,
                ssl=_ssl(options.tls),
                timeout=timeout,
                statement_cache_size=0,
                server_settings={"application_name": "uptimed"},
            )
        except OSError as exc:
            last = exc
    raise last or OSError(f"{host} has no address")


def _ssl(mode: str) -> Any:
    if mode == "disable":
        return False
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context if mode == "require" else "prefer"


def _text(value: Any) -> str:
    """An answer as text, as ``expected`` is written: ``1``, ``t``, ``ok``; ``NULL`` for none."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = str(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"
