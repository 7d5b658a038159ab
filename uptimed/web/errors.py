"""How the pages answer errors: an HTML page (404, 403, 409 ...), or the sign-in page for a visitor without a session.

The rules' errors map here: ``NotFound`` is the 404 page (the same whether
the object does not exist or is someone else's), ``DeclaredInFile`` a 409
page saying where to change it. :mod:`uptimed.app` installs these for every
path that is a page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from uptimed.rules.errors import Conflict, DeclaredInFile, Invalid, NotFound, RuleError
from uptimed.rules.quotas import QuotaExceeded, RateLimited
from uptimed.web.session import PageError, SignInRequired, not_found, sign_in_url
from uptimed.web.templates import render

Handler = Callable[[Request, Any], Awaitable[Response | None]]
"""An exception handler; None leaves the error to the API's handler (a page has nothing better to say)."""


def error_page(request: Request, error: PageError) -> Response:
    return render(request, "error.html", status_code=error.status, title=error.title, message=error.message)


def declared_in_file(what: str) -> PageError:
    """The 409 page for changing a monitor or integration that only uptimed.toml may change."""
    return PageError(
        409,
        "Declared in uptimed.toml",
        f"This {what} is declared in uptimed.toml, so it can only be changed there: "
        "edit the file and reload uptimed. Nothing was changed.",
    )


def page_of(error: RuleError) -> PageError:
    """A rule's error as the page that says it."""
    if isinstance(error, NotFound):
        return not_found(error.what)
    if isinstance(error, DeclaredInFile):
        return declared_in_file(error.what)
    if isinstance(error, Invalid):
        return PageError(422, "Not accepted", str(error))
    if isinstance(error, Conflict):
        return PageError(409, "Not now", error.detail)
    if isinstance(error, QuotaExceeded):
        return PageError(409, "Limit reached", f"{error}. Nothing was changed.")
    if isinstance(error, RateLimited):
        return PageError(429, "Too many at once", f"{error}.")
    return PageError(400, "Bad request", str(error))


async def _sign_in(request: Request, exc: SignInRequired) -> Response:
    if request.headers.get("X-Uptimed-Fetch"):
        return Response("signed out", status_code=401, media_type="text/plain")
    return RedirectResponse(sign_in_url(exc.next_path), status_code=303)


async def _page_error(request: Request, exc: PageError) -> Response:
    return error_page(request, exc)


async def _rule(request: Request, exc: RuleError) -> Response:
    return error_page(request, page_of(exc))


async def _http(request: Request, exc: StarletteHTTPException) -> Response | None:
    if exc.status_code == 404:
        return error_page(request, PageError(404, "Not found", "There is no page at this address."))
    return None


async def _validation(request: Request, exc: RequestValidationError) -> Response:
    # A page's path or query that does not parse (/monitors/abc) is a page that does not exist.
    return error_page(request, not_found("page"))


HANDLERS: dict[type[Exception], Handler] = {
    SignInRequired: _sign_in,
    PageError: _page_error,
    RuleError: _rule,
    StarletteHTTPException: _http,
    RequestValidationError: _validation,
}
"""How a page answers each error."""
