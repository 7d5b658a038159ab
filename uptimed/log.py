"""Structured logging: JSON lines for journald and files, a readable console on a terminal.

The client libraries (aiokafka, asyncpg, redis) log through the standard
library. While the daemon runs, their records go to its
:class:`~uptimed.watch.ServiceWatch` instead of the output
(:func:`fold_library_records`): it folds them into uptimed's own lines about
the service, so a broker outage is three lines, not two hundred a second.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import Any

import structlog

from uptimed.config import LogSettings

_SECRET_KEYS = re.compile(r"(password|secret|token|dsn|webhook_?url|authorization|api_key)", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: mask values of secret-looking keys and credentials in URLs."""
    for key, value in event.items():
        if _SECRET_KEYS.search(key) and value is not None and key != "event":
            event[key] = "***"
        elif isinstance(value, str) and "@" in value:
            event[key] = _URL_CREDENTIALS.sub(r"\g<scheme>***@", value)
    return event


LIBRARIES = {"aiokafka": "kafka", "kafka": "kafka", "asyncpg": "postgresql", "redis": "redis"}
"""Top-level logger name of a client library -> the service it talks to."""

_fold: Callable[[str, logging.LogRecord], None] | None = None


def fold_library_records(into: Callable[[str, logging.LogRecord], None] | None) -> None:
    """Hand the client libraries' records to ``into(service, record)`` instead of writing them; None: write them."""
    global _fold
    _fold = into


class _LibraryFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fold = _fold
        service = LIBRARIES.get(record.name.partition(".")[0])
        if fold is None or service is None:
            return True
        fold(service, record)
        return False


def configure(settings: LogSettings, *, stream: Any = None) -> None:
    """Set up structlog and the stdlib root logger (libraries log through it)."""
    stream = stream or sys.stdout
    level = getattr(logging, settings.level.upper())
    use_json = settings.format == "json" or (settings.format == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer] if use_json else [*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.addFilter(_LibraryFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries are chatty at INFO (aiokafka logs every rebalance step); keep them at WARNING.
    root.setLevel(max(level, logging.WARNING))
