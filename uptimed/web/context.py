"""What every page works with: the rules' services (pool, channels, settings, HTTP client)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from uptimed.rules.services import Services
from uptimed.store import MAX_ID


async def services(request: Request) -> Services:
    # async: a plain function would run in FastAPI's thread pool, a thread hop per page for a lookup.
    found: Services = request.app.state.context
    return found


Context = Annotated[Services, Depends(services)]

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
"""An object's id in a page's path: anything else is a page that does not exist (404)."""
