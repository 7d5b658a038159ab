"""The ``ssh`` kind: connect, read the server's identification line, judge it."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict, Field

from uptimed.check import CheckResult, ErrorClass
from uptimed.monitor import Monitor
from uptimed.probe.base import CheckContext, host_port_problem, split_host_port

SSH_PORT = 22
MAX_LINE = 255
"""RFC 4253: the identification line is at most 255 characters, CR LF included."""


class SshOptions(BaseModel):
    """Options of an ``ssh`` monitor."""

    model_config = ConfigDict(extra="forbid")

    expected_software: str | None = Field(
        None, max_length=200, description="text the server's software version must contain, e.g. OpenSSH_9"
    )


class SshKind:
    """``ssh``: an SSH server answers with its identification line (``SSH-2.0-...``)."""

    name = "ssh"
    title = "SSH"
    config_model = SshOptions
    target_help = "host:port of the SSH server (22 when left out): bastion.example.com"

    def target_problem(self, target: str) -> str | None:
        problem = host_port_problem(target, SSH_PORT)
        return f"an ssh monitor needs host:port ({problem})" if problem else None

    async def check(self, monitor: Monitor, options: SshOptions, context: CheckContext) -> CheckResult:
        host, port = split_host_port(monitor.target, SSH_PORT)
        try:
            async with asyncio.timeout(monitor.timeout):
                line = await _identification(context, host, port)
        except TimeoutError:
            return context.down(ErrorClass.TIMEOUT, f"no SSH identification within {monitor.timeout:g} s")
        except OSError as exc:
            return context.down(ErrorClass.CONNECT, f"cannot connect to {host}:{port}: {exc.strerror or exc}")
        elapsed_ms = context.elapsed_ms()
        if line is None or not line.startswith("SSH-"):
            shown = "nothing" if not line else repr(line[:60])
            return context.down(ErrorClass.ANSWER, f"not an SSH server: it said {shown}", response_time_ms=elapsed_ms)
        software = line.split("-", 2)[2] if line.count("-") >= 2 else ""
        if not line.startswith(("SSH-2.0-", "SSH-1.99-")):
            return context.down(ErrorClass.ANSWER, f"SSH protocol 2 not offered: {line}", response_time_ms=elapsed_ms)
        if options.expected_software and options.expected_software not in software:
            return context.down(
                ErrorClass.ANSWER,
                f"runs {software}, expected {options.expected_software}",
                response_time_ms=elapsed_ms,
                message=line,
            )
        return context.up(response_time_ms=elapsed_ms, message=line)


async def _identification(context: CheckContext, host: str, port: int) -> str | None:
    """The server's identification line (lines before it are allowed by RFC 4253 and skipped)."""
    error: OSError | None = None
    for address in await context.addresses(host, port):
        try:
            reader, writer = await asyncio.open_connection(address, port)
        except OSError as exc:
            error = exc
            continue
        first: str | None = None
        try:
            for _ in range(20):
                raw = await reader.readline()
                if not raw:
                    break
                line = raw[:MAX_LINE].decode("utf-8", errors="replace").rstrip("\r\n")
                if line.startswith("SSH-"):
                    return line
                first = first if first is not None else line
            return first
        finally:
            writer.close()
    raise error or OSError(f"{host} has no address")
