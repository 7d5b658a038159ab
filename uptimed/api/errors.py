"""Error answers of the API: their models, the exceptions routes raise, and the handlers.

The rules' errors (:mod:`uptimed.rules.errors`) map here: ``NotFound`` is
404, ``DeclaredInFile`` and ``Conflict`` 409, ``Invalid`` 422 with each problem inside the
body. Every error body is JSON. ``{"detail": "..."}`` (:class:`Problem`) for 401,
403, 404, 409, 413 and 500; ``{"detail": [{loc, field, msg, type}]}``
(:class:`ValidationProblem`) for 422, where ``field`` is the dotted path
inside the body or the parameter's name, e.g. ``config.webhookUrl``. No error
body repeats a value it was given: a rejected value may be a secret.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from uptimed.rules.errors import Across, Conflict, DeclaredInFile, Invalid, NotFound, RuleError, dotted, plain
from uptimed.rules.errors import Problem as RuleProblem
from uptimed.rules.quotas import QuotaExceeded, RateLimited

log = structlog.get_logger()

Handler = Callable[[Request, Any], Awaitable[Response]]
"""An exception handler: the request and the exception of the kind it is registered for."""

_SOURCES = ("body", "query", "path", "header")


class Problem(BaseModel):
    """What went wrong, in one sentence."""

    detail: str


class FieldProblem(BaseModel):
    """One rejected input."""

    loc: list[str | int] = Field(description="where: 'body', 'query' or 'path', then the path inside it")
    field: str = Field(description="dotted path inside the body, or the parameter's name: 'config.webhookUrl'")
    msg: str
    type: str = Field(description="a stable code, e.g. 'missing', 'string_too_long', 'unknown_channel'")


class ValidationProblem(BaseModel):
    """The request did not validate; one entry per problem."""

    detail: list[FieldProblem]
    available: list[str] | None = Field(None, description="for an unknown channel type: the installed types")


class ApiError(Exception):
    """An error answer a route gives on purpose."""

    def __init__(self, status: int, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


class InvalidInput(Exception):
    """A 422 a route raises for problems found after FastAPI's own validation."""

    def __init__(self, problems: Sequence[FieldProblem], *, available: list[str] | None = None) -> None:
        super().__init__("; ".join(f"{p.field}: {p.msg}" for p in problems))
        self.problems = list(problems)
        self.available = available


def field_problem(loc: Sequence[str | int], msg: str, type_: str = "value_error") -> FieldProblem:
    """A problem at ``loc`` (``("body", "config", "webhookUrl")``); its ``field`` is the path inside the source."""
    inner = loc[1:] if loc and loc[0] in _SOURCES else loc
    return FieldProblem(loc=list(loc), field=dotted(inner) or str(loc[0] if loc else ""), msg=msg, type=type_)


def _from_pydantic(error: Mapping[str, Any]) -> FieldProblem:
    msg = plain(error)
    raised = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid":
        msg = f"invalid JSON: {raised}" if raised else "invalid JSON"
    loc = tuple(error.get("loc", ("body",)))
    if isinstance(raised, Across):  # a rule across fields: named by the field it is about, not the whole body
        loc = (*loc, *raised.about)
    return field_problem(loc, msg, str(error.get("type", "value_error")))


def body_problems(problems: Iterable[RuleProblem], source: str = "body") -> list[FieldProblem]:
    """A rule's problems as the API's, inside ``source`` (``body`` unless the route says ``query``)."""
    return [field_problem((source, *p.loc), p.msg, p.type) for p in problems]


def problem_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(Problem(detail=detail).model_dump(), status_code=status, headers=dict(headers or {}))


def validation_response(problems: Sequence[FieldProblem], available: list[str] | None = None) -> JSONResponse:
    body = ValidationProblem(detail=list(problems), available=available).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=422)


async def _api_error(_: Request, exc: ApiError) -> Response:
    return problem_response(exc.status, exc.detail, exc.headers)


async def _invalid(_: Request, exc: InvalidInput) -> Response:
    return validation_response(exc.problems, exc.available)


async def _rule(_: Request, exc: RuleError) -> Response:
    if isinstance(exc, NotFound):
        return problem_response(404, f"{exc.what} not found")
    if isinstance(exc, DeclaredInFile):
        detail = f"this {exc.what} is managed by the config file; change it there and reload uptimed"
        return problem_response(409, detail)
    if isinstance(exc, Invalid):
        return validation_response(body_problems(exc.problems), exc.available)
    if isinstance(exc, Conflict):
        return problem_response(409, exc.detail)
    if isinstance(exc, QuotaExceeded):
        return problem_response(409, str(exc))
    if isinstance(exc, RateLimited):
        return problem_response(429, str(exc), {"Retry-After": str(math.ceil(exc.retry_after))})
    return problem_response(400, str(exc))


async def _validation(_: Request, exc: RequestValidationError) -> Response:
    # Built field by field: FastAPI's own body would echo the input back.
    return validation_response([_from_pydantic(error) for error in exc.errors()])


async def _http(_: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else "error"
    return problem_response(exc.status_code, detail, exc.headers)


async def _gone(_: Request, exc: ClientDisconnect) -> Response:
    # The client hung up while its body was read: nobody is there to answer, and nothing failed here.
    return Response(status_code=499)


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("api.crashed", method=request.method, path=request.url.path, error_type=type(exc).__name__)
    return problem_response(500, "internal error")


HANDLERS: dict[type[Exception], Handler] = {
    ApiError: _api_error,
    InvalidInput: _invalid,
    RuleError: _rule,
    RequestValidationError: _validation,
    StarletteHTTPException: _http,
    ClientDisconnect: _gone,
    Exception: _crash,
}
"""How the API answers each error, as JSON; :mod:`uptimed.app` installs them."""


Responses = dict[int | str, dict[str, Any]]
"""What a route or router documents it may answer besides success: FastAPI's ``responses=`` argument."""


def _doc(description: str, model: type[BaseModel] = Problem) -> dict[str, Any]:
    return {"model": model, "description": description}


MALFORMED: Responses = {
    400: {
        "description": "Not well-formed HTTP (a bad header or framing); answered by the HTTP server, as text.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}
UNAUTHORIZED: Responses = {
    401: _doc("No valid bearer token: missing, unknown or revoked. Carries `WWW-Authenticate: Bearer`.")
}
FORBIDDEN: Responses = {403: _doc("The caller is not an admin.")}
NOT_FOUND: Responses = {404: _doc("No such object among the caller's own (another user's answers the same).")}
CONFLICT: Responses = {409: _doc("Declared in the config file, so read-only through the API.")}
NOT_NOW: Responses = {
    409: _doc("Not in this state: the incident is over or already acknowledged, the policy is in use.")
}
INVALID: Responses = {
    422: _doc("A parameter or the body did not validate; each problem names its field.", ValidationProblem)
}
TOO_LARGE: Responses = {413: _doc("The body is larger than the API accepts (64 KiB).")}
QUOTA: Responses = {
    409: _doc("The caller has as many as [quotas] allows (the detail names the limit and the setting).")
}
RATE_LIMITED: Responses = {
    429: {
        "model": Problem,
        "description": "Too many in a short time ([quotas]); `Retry-After` says how many seconds to wait.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
    }
}
