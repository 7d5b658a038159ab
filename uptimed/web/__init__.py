"""The web pages, served by the daemon beside the API: server-rendered, no build step, no CDN.

:func:`install` adds the pages to the API's app. Pages answer HTML (errors
too: a 404 page, a 403 for a refused form); ``/api`` keeps answering JSON.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from uptimed.web import (
    assets,
    auth,
    dashboard,
    integrations,
    monitors,
    notifications,
    status,
)
from uptimed.web.session import PageError, SignInRequired, not_found, sign_in_url
from uptimed.web.templates import render

_JSON_PREFIXES = ("/api/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(_JSON_PREFIXES)


def error_page(request: Request, error: PageError) -> Response:
    return render(request, "error.html", status_code=error.status, title=error.title, message=error.message)


PAGES = (assets, auth, dashboard, monitors, status, integrations, notifications)


def install(app: FastAPI) -> None:
    """Add the pages to ``app`` (the API's), with error pages for them."""
    for module in PAGES:
        app.include_router(module.router)
    json_http = app.exception_handlers[StarletteHTTPException]
    json_validation = app.exception_handlers[RequestValidationError]

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.headers.get("X-Uptimed-Fetch"):
            return Response("signed out", status_code=401, media_type="text/plain")
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return error_page(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_page(request) and exc.status_code == 404:
            return error_page(request, PageError(404, "Not found", "There is no page at this address."))
        return await json_http(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # A page's path or query that does not parse (/monitors/abc) is a page that does not exist.
        if _is_page(request):
            return error_page(request, not_found("page"))
        return await json_validation(request, exc)
