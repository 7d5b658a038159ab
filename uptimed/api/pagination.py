"""Cursor pagination: a list answers a JSON array and says where the next page starts.

The body stays a plain array (the original integrations shape); the next
page is announced in two headers, ``X-Next-Cursor`` (pass it back as
``?cursor=``) and ``Link: <url>; rel="next"``. Neither is sent on the last
page. A cursor is opaque to clients (see :mod:`uptimed.rules.cursors`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request, Response

from uptimed.api.errors import InvalidInput, body_problems
from uptimed.rules import cursors
from uptimed.rules.errors import Invalid

T = TypeVar("T")

HEADERS_DOC = {
    "X-Next-Cursor": {
        "description": "present when there is a next page: pass it as `cursor`",
        "schema": {"type": "string"},
    },
    "Link": {"description": 'present when there is a next page: `<url>; rel="next"`', "schema": {"type": "string"}},
}
"""For the OpenAPI ``headers`` of a list route's 200 answer."""


def decode(cursor: str | None, check: Callable[[dict[str, Any]], T]) -> T | None:
    """The position in ``cursor`` as ``check`` reads it; 422 on ``cursor`` when it is not one of ours."""
    try:
        return cursors.decode(cursor, check)
    except Invalid as exc:
        raise InvalidInput(body_problems(exc.problems, source="query")) from None


def page(
    items: Sequence[T], limit: int, request: Request, response: Response, position: Callable[[T], dict[str, Any]]
) -> list[T]:
    """The first ``limit`` of ``items`` (fetched as ``limit + 1``), announcing the next page if there is one."""
    if len(items) <= limit:
        return list(items)
    shown = list(items[:limit])
    cursor = cursors.encode(position(shown[-1]))
    response.headers["X-Next-Cursor"] = cursor
    response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor)}>; rel="next"'
    return shown
