"""The HTTP app: the API and the web pages on one FastAPI app, and which face answers an error.

``api/`` and ``web/`` never import each other; this module composes them. A
request whose path is the API's (``/api/``, ``/healthz``, ... see
:data:`uptimed.api.routes.PATHS`) gets the API's JSON errors; every other
path is a page and gets the pages' HTML errors, the rules' errors included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

from uptimed import __version__, metrics, web
from uptimed.api import errors as api_errors
from uptimed.api import routes
from uptimed.api.body import BodyGuard
from uptimed.api.context import ApiContext, Readiness
from uptimed.api.server import AccessLog
from uptimed.channels.registry import ChannelRegistry
from uptimed.config import Settings
from uptimed.probe.pings import PingReceiver
from uptimed.rules.quotas import Limits
from uptimed.rules.targets import TargetPolicy, policy_for
from uptimed.web import errors as web_errors


def is_page(request: Request) -> bool:
    """Whether ``request`` is for a page (HTML errors), not for the API (JSON errors)."""
    return not request.url.path.startswith(routes.PATHS)


def _answer(kind: type[Exception]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The handler of errors of ``kind``: the pages' for a page when they have one, else the API's."""
    for_api = api_errors.HANDLERS.get(kind)
    for_pages = web_errors.HANDLERS.get(kind)

    async def answer(request: Request, exc: Exception) -> Response:
        if for_pages is not None and (for_api is None or is_page(request)):
            response = await for_pages(request, exc)
            if response is not None:
                return response
        assert for_api is not None, f"no handler for {kind.__name__} outside the pages"
        return await for_api(request, exc)

    return answer


def create_app(
    *,
    pool: asyncpg.Pool,
    registry: ChannelRegistry,
    settings: Settings,
    http: httpx.AsyncClient,
    readiness: Readiness,
    pings: PingReceiver | None = None,
    policy: TargetPolicy | None = None,
    trusted_http: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The API and the pages over these connections; ``readiness`` answers ``/readyz``, ``pings`` takes heartbeats.

    ``http`` sends users' test notifications (made with ``policy``, :func:`uptimed.channels.http.delivery_client`),
    ``trusted_http`` those of the config file's integrations. ``policy`` defaults to ``[security]``'s.
    """
    app = FastAPI(
        title="uptimed",
        version=__version__,
        description=routes.DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served by uptimed.web.assets with a vendored Swagger UI: no CDN
        redoc_url=None,
    )
    app.state.context = ApiContext(
        pool=pool,
        registry=registry,
        settings=settings,
        http=http,
        readiness=readiness,
        pings=pings,
        policy=policy if policy is not None else policy_for(settings),
        limits=Limits.of(settings.quotas),
        trusted_http=trusted_http,
    )
    routes.install(app)
    web.install(app)
    for kind in {*api_errors.HANDLERS, *web_errors.HANDLERS}:
        app.add_exception_handler(kind, _answer(kind))
    app.add_middleware(BodyGuard)
    app.add_middleware(AccessLog)
    metrics.track_channels(registry)
    return app
