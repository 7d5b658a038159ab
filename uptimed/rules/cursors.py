"""Where the next page of a list starts, as an opaque cursor both faces hand out and read back.

A cursor is URL-safe base64 of a little JSON naming the last row shown. It
only positions a query that is scoped to the user anyway, so a forged
cursor can skip rows, never reveal another user's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from uptimed.rules.errors import Invalid, Problem
from uptimed.store import MAX_ID

T = TypeVar("T")

_EARLIEST = datetime(1970, 1, 1)
_LATEST = datetime(2200, 1, 1)


def as_instant(value: datetime) -> datetime:
    """``value`` in UTC (without an offset it is UTC); ValueError outside 1970..2200."""
    # Compared before converting: a far date with an offset overflows datetime.
    if not _EARLIEST <= value.replace(tzinfo=None) <= _LATEST:
        raise ValueError("must be between 1970-01-01 and 2200-01-01")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def encode(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, check: Callable[[dict[str, Any]], T]) -> T | None:
    """The position in ``cursor`` as ``check`` reads it; :class:`Invalid` at ``("cursor",)`` if it is not ours."""
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return check(data)
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise Invalid([Problem(("cursor",), "is not a cursor this API gave", "invalid_cursor")]) from None


def id_position(data: dict[str, Any]) -> int:
    """Check an ``{"id": n}`` cursor."""
    value = data["id"]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise ValueError("bad id")
    return value


def check_position(data: dict[str, Any]) -> tuple[datetime, str]:
    """Check a ``{"t": time, "r": region}`` cursor into a monitor's checks."""
    at, region = data["t"], data["r"]
    if not isinstance(at, str) or not isinstance(region, str) or len(region) > 64:
        raise ValueError("bad position")
    parsed = datetime.fromisoformat(at)
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    return as_instant(parsed), region


def check_cursor(at: datetime, region: str) -> str:
    """The cursor that continues after the check of ``region`` at ``at``."""
    return encode({"t": at.isoformat(), "r": region})
