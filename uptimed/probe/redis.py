"""The ``redis`` kind: connect to a Redis server, sign in, run a command (PING by default), compare the reply."""

from __future__ import annotations

import asyncio
import inspect
import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, ConnectionError, NoPermissionError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from uptimed.channels.base import Secret
from uptimed.check import CheckResult, ErrorClass
from uptimed.monitor import Monitor
from uptimed.probe.base import CheckContext, host_port_problem, split_host_port
from uptimed.probe.tcp import describe_os_error

REDIS_PORT = 6379
_SHOWN_CHARS = 200
# No CLIENT SETINFO round trips on connect: a check is one connection, one command (redis-py 7 spells it driver_info).
_NO_SETINFO: dict[str, Any] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters
    else {"lib_name": None, "lib_version": None}
)


class RedisOptions(BaseModel):
    """Options of a ``redis`` monitor."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = Field(None, max_length=256, description="ACL user; empty: the default user")
    password: Secret | None = Field(None, description="its password; empty: none")
    database: int = Field(0, ge=0, le=1000, description="the database number to select")
    tls: bool = Field(False, description="connect with TLS (rediss://), without verifying the certificate")
    command: str = Field("PING", min_length=1, max_length=1024, description="the command to run, e.g. PING or GET key")
    expected: str | None = Field(
        None, max_length=1024, description="what its reply must read, as text; empty: any reply but an error"
    )

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot read the command: {exc}") from None
        if not words:
            raise ValueError("is empty")
        return value


class RedisKind:
    """``redis``: a sign-in and one command; response time is the whole round trip."""

    name = "redis"
    title = "Redis"
    config_model = RedisOptions
    target_help = "host:port of the server (6379 when left out): cache.internal:6379"

    def target_problem(self, target: str) -> str | None:
        problem = host_port_problem(target, REDIS_PORT)
        return f"a redis monitor needs host:port ({problem})" if problem else None

    async def check(self, monitor: Monitor, options: RedisOptions, context: CheckContext) -> CheckResult:
        host, port = split_host_port(monitor.target, REDIS_PORT)
        words = shlex.split(options.command)
        connection: Connection | None = None
        try:
            async with asyncio.timeout(monitor.timeout):
                address = (await context.addresses(host, port))[0]
                connection = _connection(address, port, options, monitor.timeout)
                await connection.connect()  # type: ignore[no-untyped-call]
                await connection.send_command(*words)
                reply = await connection.read_response()
        except TimeoutError:
            return context.down(ErrorClass.TIMEOUT, f"no answer within {monitor.timeout:g} s")
        except AuthenticationError as exc:
            return context.down(ErrorClass.AUTH, f"sign-in refused: {exc}")
        except NoPermissionError as exc:
            return context.down(ErrorClass.AUTH, f"{words[0].upper()} not permitted: {exc}")
        except ResponseError as exc:
            if str(exc).startswith(("WRONGPASS", "NOAUTH", "NOPERM")):
                return context.down(ErrorClass.AUTH, f"sign-in refused: {exc}")
            return context.down(ErrorClass.ANSWER, f"{words[0]} failed: {exc}")
        except RedisTimeoutError:
            return context.down(ErrorClass.TIMEOUT, f"no answer within {monitor.timeout:g} s")
        except (ConnectionError, OSError) as exc:
            return context.down(ErrorClass.CONNECT, f"cannot connect to {host}:{port}: {_reason(exc)}")
        except RedisError as exc:
            return context.down(ErrorClass.OTHER, f"{type(exc).__name__}: {exc}")
        finally:
            if connection is not None:
                await connection.disconnect(nowait=True)
        elapsed_ms = context.elapsed_ms()
        answer = _text(reply)
        message = f"{words[0].upper()} answered {answer}"
        if options.expected is not None and answer != options.expected:
            return context.down(
                ErrorClass.ANSWER,
                f"{words[0].upper()} answered {answer}, expected {options.expected[:_SHOWN_CHARS]!r}",
                response_time_ms=elapsed_ms,
                message=message,
            )
        return context.up(response_time_ms=elapsed_ms, message=message)


def _connection(address: str, port: int, options: RedisOptions, timeout: float) -> Connection:
    kind = SSLConnection if options.tls else Connection
    extra: dict[str, Any] = {"ssl_cert_reqs": "none", "ssl_check_hostname": False} if options.tls else {}
    return kind(
        host=address,
        port=port,
        username=options.username,
        password=options.password.get_secret_value() if options.password else None,
        db=options.database,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **_NO_SETINFO,
        **extra,
    )


def _text(reply: Any) -> str:
    """A reply as text, as ``expected`` is written: ``PONG``, ``42``, ``(nil)``; lists one item a line."""
    if reply is None:
        text = "(nil)"
    elif isinstance(reply, bytes):
        text = reply.decode("utf-8", errors="replace")
    elif isinstance(reply, list | tuple):
        text = "\n".join(_text(item) for item in reply)
    else:
        text = str(reply)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def _reason(exc: BaseException) -> str:
    """Why a connection failed, from the OSError redis-py wraps (``Error 111 connecting to ...``)."""
    cause: BaseException | None = exc
    while cause is not None and not (isinstance(cause, OSError) and cause.errno):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError):
        return describe_os_error(cause)
    if match := re.match(r"Error (\d+) ", str(exc)):
        return describe_os_error(OSError(int(match[1]), ""))
    return str(exc) or type(exc).__name__
