"""What every page works with: the rules' services (pool, channels, settings, HTTP client)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from uptimed.rules.services import Services
from uptimed.store import MAX_ID


def services(request: Request) -> Services:
    found: Services = request.app.state.context
    return found


Context = Annotated[Services, Depends(services)]

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
"""An object's id in a page's path: anything else is a page that does not exist (404)."""
