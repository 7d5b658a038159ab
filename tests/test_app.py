"""The app composed of both faces: nothing in it runs in FastAPI's thread pool."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from uptimed import web
from uptimed.api import routes
from uptimed.api.bounds import known_query


def _is_async(call: Any) -> bool:
    # A dependency may be an object whose __call__ is the coroutine function (HTTPBearer).
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(type(call).__call__)


def _sync_calls(dependant: Dependant) -> list[str]:
    found = (
        [] if dependant.call is None or _is_async(dependant.call) else [getattr(dependant.call, "__qualname__", "?")]
    )
    for sub in dependant.dependencies:
        found += _sync_calls(sub)
    return found


def test_every_route_and_dependency_of_the_api_and_the_pages_is_async() -> None:
    # A plain function would run in the thread pool: a thread hop per request, and a queue for the pool's threads.
    routers = [module.router for module in (*routes.MODULES, *web.PAGES)]
    checked = [route for router in routers for route in router.routes if isinstance(route, APIRoute)]
    assert len(checked) > 40
    assert {route.path: calls for route in checked if (calls := _sync_calls(route.dependant))} == {}
    assert _is_async(known_query)  # the dependency routes.install adds to every API route
