"""The API's routers, installed on the app with the dependency they share, and the paths that are the API's."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from uptimed.api import (
    channels,
    escalation_policies,
    exports,
    health,
    incidents,
    integrations,
    kinds,
    maintenance,
    metrics,
    monitors,
    notifications,
    ping,
    tokens,
    users,
)
from uptimed.api.bounds import known_query

MODULES = (
    integrations,
    channels,
    monitors,
    kinds,
    maintenance,
    exports,
    notifications,
    incidents,
    escalation_policies,
    users,
    tokens,
    health,
    metrics,
)

PATHS = ("/api/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/ping/")
"""Paths (prefixes) the API answers, errors included, with JSON; every other path is a page."""

DESCRIPTION = """\
The HTTP API of uptimed. Every `/api/v1` route needs `Authorization: Bearer <token>`
(`uptimed user create NAME --email ADDR` prints a first token) and sees only the
caller's own objects: another user's answers 404.

Lists answer a JSON array; when there is more, the `X-Next-Cursor` header holds
the `cursor` of the next page (and `Link` its URL). Errors answer `{"detail": ...}`;
a 422 lists each problem with its `field` (e.g. `config.webhookUrl`).
Integrations keep the original API's camelCase shapes.
"""


def install(app: FastAPI) -> None:
    """Add every API route to ``app``; an unknown query parameter is refused on each."""
    for module in MODULES:
        app.include_router(module.router, dependencies=[Depends(known_query)])
    # A job's ping may carry what its tool adds to the URL (?rid=..., a cache buster): never refused for it.
    app.include_router(ping.router)
