"""Cursor pagination: a list answers a JSON array and says where the next page starts.

The body stays a plain array (the original integrations shape); the next
page is announced in two headers, ``X-Next-Cursor`` (pass it back as
``?cursor=``) and ``Link: <url>; rel="next"``. Neither is sent on the last
page. A cursor is opaque to clients: URL-safe base64 of a little JSON naming
the last row shown. It only positions a query that is scoped to the caller
anyway, so a forged cursor can skip rows, never reveal another user's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request, Response

from uptimed.api.errors import InvalidInput, field_problem

T = TypeVar("T")

HEADERS_DOC = {
    "X-Next-Cursor": {
        "description": "present when there is a next page: pass it as `cursor`",
        "schema": {"type": "string"},
    },
    "Link": {"description": "present when there is a next page: `<url>; rel=\"next\"`", "schema": {"type": "string"}},
}
"""For the OpenAPI ``headers`` of a list route's 200 answer."""


def encode(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None, check: Callable[[dict[str, Any]], T]) -> T | None:
    """The position in ``cursor`` as ``check`` reads it; 422 on ``cursor`` when it is not one of ours."""
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return check(data)
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput([field_problem(("query", "cursor"), "is not a cursor this API gave", "invalid_cursor")]) from None


def id_position(data: dict[str, Any]) -> int:
    """Check a ``{"id": n}`` cursor."""
    value = data["id"]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise ValueError("bad id")
    return value


def page(
    items: Sequence[T], limit: int, request: Request, response: Response, position: Callable[[T], dict[str, Any]]
) -> list[T]:
    """The first ``limit`` of ``items`` (fetched as ``limit + 1``), announcing the next page if there is one."""
    if len(items) <= limit:
        return list(items)
    shown = list(items[:limit])
    cursor = encode(position(shown[-1]))
    response.headers["X-Next-Cursor"] = cursor
    response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor)}>; rel="next"'
    return shown
