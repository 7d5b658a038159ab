"""What every route works with: the rules' services (pool, channels, settings, HTTP client) and readiness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from uptimed.rules.services import Services

if TYPE_CHECKING:
    from uptimed.probe.pings import PingReceiver

Readiness = Callable[[], Awaitable[Mapping[str, bool | str]]]
"""Each part's state: True when usable, else False or why not (``{"postgresql": True, "dispatcher": "crashed ..."}``)."""


@dataclass(frozen=True)
class ApiContext(Services):
    readiness: Readiness
    pings: PingReceiver | None = None
    """Takes heartbeats' pings (``/ping/<token>``); None where this process has no Redis to buffer them in."""


async def api_context(request: Request) -> ApiContext:
    # async: a plain function would run in FastAPI's thread pool, a thread hop per request for a lookup.
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(api_context)]
