"""Bounded input types shared by the routes: no parameter can ask for more than the API gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.routing import APIRoute
from pydantic import AfterValidator

from uptimed.api.errors import InvalidInput, field_problem
from uptimed.rules.cursors import as_instant
from uptimed.store import MAX_ID

DEFAULT_PAGE = 50
MAX_PAGE = 200


Instant = Annotated[datetime, AfterValidator(as_instant)]
"""An ISO 8601 time between 1970 and 2200; without an offset it is UTC."""

IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="the object's id")]

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}")]

CursorQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="where the next page starts: the `X-Next-Cursor` header of the previous page",
    ),
]

SinceQuery = Annotated[Instant | None, Query(description="only from this time on (ISO 8601)")]


_known: dict[int, frozenset[str]] = {}


async def known_query(request: Request) -> None:
    """Refuse query parameters an API route does not take: a misspelt ``limt`` must not pass unnoticed.

    Web pages are left alone: a link with ``?utm_source=...`` still opens the page.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.url.path.startswith("/api/"):
        return
    names = _known.get(id(route))
    if names is None:
        names = frozenset(_query_names(route.dependant))
        _known[id(route)] = names
    unknown = sorted(set(request.query_params) - names)
    if unknown:
        raise InvalidInput(
            [field_problem(("query", name), "unknown query parameter", "unknown_parameter") for name in unknown[:10]]
        )


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
