"""The ``tls`` kind: a TLS handshake with ``host:port`` (optionally after SMTP STARTTLS), judged by its certificate.

Down when the chain does not verify (trust, host name, validity), with the
reason, or when fewer than ``expiry_days`` remain. Up results say how many
days remain, the subject and the issuer. A certificate that does not verify
is fetched again without verification, only to say what it is.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from uptimed.check import CheckResult, ErrorClass
from uptimed.monitor import Monitor
from uptimed.probe.base import CheckContext, host_port_problem, split_host_port
from uptimed.probe.certificates import CertificateFacts, certificate_facts
from uptimed.probe.tcp import describe_os_error

HTTPS_PORT = 443
CERT_HAS_EXPIRED = 10
"""OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED."""
_SMTP_LINE_LIMIT = 4096

Pem = Annotated[str, WithJsonSchema({"type": "string", "maxLength": 65536, "x-control": "textarea"})]


class TlsOptions(BaseModel):
    """Options of a ``tls`` monitor."""

    model_config = ConfigDict(extra="forbid")

    expiry_days: int = Field(14, ge=0, le=365, description="down when the certificate expires within this many days")
    server_name: str | None = Field(
        None, max_length=253, description="the name to ask for (SNI) and to verify; empty: the target's host"
    )
    starttls: Literal["none", "smtp"] = Field("none", description="'smtp': upgrade an SMTP connection with STARTTLS")
    ca: Pem | None = Field(None, max_length=65536, description="PEM certificates to trust besides the system's")


class TlsKind:
    """``tls``: the certificate a server presents, its chain and its expiry."""

    name = "tls"
    title = "TLS certificate"
    config_model = TlsOptions
    target_help = "host:port to connect to (443 when left out): mail.example.com:25, shop.example.com"

    def target_problem(self, target: str) -> str | None:
        problem = host_port_problem(target, HTTPS_PORT)
        return f"a tls monitor needs host:port ({problem})" if problem else None

    async def check(self, monitor: Monitor, options: TlsOptions, context: CheckContext) -> CheckResult:
        host, port = split_host_port(monitor.target, HTTPS_PORT)
        name = options.server_name or host
        try:
            async with asyncio.timeout(monitor.timeout):
                der = await _handshake(context, host, port, name, options, _verifying(options.ca))
        except TimeoutError:
            return context.down(ErrorClass.TIMEOUT, f"no TLS handshake within {monitor.timeout:g} s")
        except ssl.SSLCertVerificationError as exc:
            facts = await _unverified_facts(context, host, port, name, options, monitor.timeout)
            error_class = ErrorClass.CERT_EXPIRY if exc.verify_code == CERT_HAS_EXPIRED else ErrorClass.TLS
            reason = exc.verify_message or exc.reason or "does not verify"
            return context.down(error_class, f"certificate does not verify: {reason}", message=_describe(facts))
        except ssl.SSLError as exc:
            return context.down(ErrorClass.TLS, f"TLS handshake failed: {_reason(exc)}")
        except _StartTlsRefused as exc:
            return context.down(ErrorClass.TLS, str(exc))
        except OSError as exc:
            return context.down(ErrorClass.CONNECT, f"cannot connect to {host}:{port}: {describe_os_error(exc)}")
        elapsed_ms = context.elapsed_ms()
        try:
            facts = certificate_facts(der)
        except (ValueError, IndexError):
            return context.down(ErrorClass.TLS, "cannot read the certificate", response_time_ms=elapsed_ms)
        days_left = (facts.not_after - time.time()) / 86400.0
        message = _describe(facts)
        if days_left < options.expiry_days:
            return context.down(
                ErrorClass.CERT_EXPIRY,
                f"certificate expires in {days_left:.1f} days ({_when(facts.not_after)}), "
                f"within the {options.expiry_days}-day warning",
                response_time_ms=elapsed_ms,
                message=message,
            )
        return context.up(response_time_ms=elapsed_ms, message=message)


class _StartTlsRefused(Exception):
    """The SMTP server did not let the connection upgrade."""


@functools.lru_cache(maxsize=64)
def _verifying(ca: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca:
        context.load_verify_locations(cadata=ca)
    return context


@functools.cache
def _unverifying() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _handshake(
    context: CheckContext, host: str, port: int, name: str, options: TlsOptions, tls: ssl.SSLContext
) -> bytes:
    """The DER certificate the server presents after a handshake with ``tls``."""
    last: OSError | None = None
    for address in await context.addresses(host, port):
        try:
            reader, writer = await asyncio.open_connection(address, port)
        except OSError as exc:
            last = exc
            continue
        try:
            if options.starttls == "smtp":
                await _smtp_starttls(reader, writer)
            await writer.start_tls(tls, server_hostname=name)
            ssl_object = writer.get_extra_info("ssl_object")
            der: bytes | None = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if der is None:
                raise ssl.SSLError("the server sent no certificate")
            return der
        finally:
            writer.close()
    raise last or OSError(f"{host} has no address")


async def _unverified_facts(
    context: CheckContext, host: str, port: int, name: str, options: TlsOptions, timeout: float
) -> CertificateFacts | None:
    """What a certificate that does not verify says of itself, if it can be fetched again in time."""
    try:
        async with asyncio.timeout(timeout):
            return certificate_facts(await _handshake(context, host, port, name, options, _unverifying()))
    except (TimeoutError, OSError, ValueError, IndexError, _StartTlsRefused):
        return None


async def _smtp_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Greeting, EHLO, STARTTLS: the connection is then ready for the handshake."""
    await _smtp_reply(reader, "220", "greeting")
    writer.write(b"EHLO uptimed\r\n")
    lines = await _smtp_reply(reader, "250", "EHLO")
    if not any(line[4:].strip().upper().startswith("STARTTLS") for line in lines):
        raise _StartTlsRefused("the SMTP server does not offer STARTTLS")
    writer.write(b"STARTTLS\r\n")
    await _smtp_reply(reader, "220", "STARTTLS")


async def _smtp_reply(reader: asyncio.StreamReader, expected: str, after: str) -> list[str]:
    """The lines of one SMTP reply; :class:`_StartTlsRefused` unless its code is ``expected``."""
    lines: list[str] = []
    while True:
        raw = await reader.readline()
        if not raw:
            raise _StartTlsRefused(f"the SMTP server closed the connection after {after}")
        line = raw[:_SMTP_LINE_LIMIT].decode("utf-8", errors="replace").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            break
    if not lines[-1].startswith(expected):
        raise _StartTlsRefused(f"the SMTP server answered {after} with {lines[-1][:100]!r}")
    return lines


def _describe(facts: CertificateFacts | None) -> str | None:
    if facts is None:
        return None
    days_left = (facts.not_after - time.time()) / 86400.0
    expiry = (
        f"expired {-days_left:.1f} days ago" if days_left < 0 else f"expires in {days_left:.1f} days"
    ) + f" ({_when(facts.not_after)})"
    return f"{expiry}; subject {facts.subject or '(none)'}; issuer {facts.issuer or '(none)'}"


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reason(exc: ssl.SSLError) -> str:
    return exc.reason.lower().replace("_", " ") if exc.reason else str(exc) or type(exc).__name__
