"""Which probe checks which kind of monitor, and the one entry point that runs a check."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from types import MappingProxyType
from typing import Protocol

import aiohttp
import structlog

from uptimed.check import CheckResult, CheckStatus, ErrorClass, now_ms
from uptimed.monitor import Monitor, MonitorKind
from uptimed.probe.http import check_http
from uptimed.probe.tcp import check_tcp

log = structlog.get_logger()


class Probe(Protocol):
    """Checks one monitor once; reports every problem of the target as a DOWN result."""

    def __call__(
        self,
        monitor: Monitor,
        *,
        region: str,
        session: aiohttp.ClientSession,
        scheduled_at_ms: int | None = None,
    ) -> Awaitable[CheckResult]: ...


PROBES: Mapping[MonitorKind, Probe] = MappingProxyType(
    {
        MonitorKind.HTTP: check_http,
        MonitorKind.TCP: check_tcp,
    }
)


async def run_probe(
    monitor: Monitor,
    *,
    region: str,
    session: aiohttp.ClientSession,
    scheduled_at_ms: int | None = None,
) -> CheckResult:
    """Check ``monitor`` once from ``region``, within ``monitor.timeout``.

    Never raises for a problem of the target: a failure is a DOWN result with
    an error class and a short message. ``session`` is the shared session from
    :func:`uptimed.probe.http.make_session`. Cancellation propagates.
    """
    checked_at_ms = now_ms()
    try:
        return await PROBES[monitor.kind](monitor, region=region, session=session, scheduled_at_ms=scheduled_at_ms)
    except Exception as exc:
        # A bug of ours or an error no probe anticipated: still a result, so the
        # monitor's state stays truthful, and a log line to fix it by.
        log.warning("probe.unexpected_error", monitor_id=monitor.id, kind=str(monitor.kind), exc_info=True)
        return CheckResult(
            monitor_id=monitor.id,
            region=region,
            status=CheckStatus.DOWN,
            error_class=ErrorClass.OTHER,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            checked_at_ms=checked_at_ms,
            scheduled_at_ms=scheduled_at_ms,
        )
