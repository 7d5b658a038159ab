"""``/healthz`` and ``/readyz``: for load balancers and systemd, without auth.

``/healthz`` says the process answers, nothing more. ``/readyz`` says
whether every part of the daemon is usable, from the state the parts keep
(the supervisor's parts, the services' watch): it makes no query of its own,
so it answers at once however busy the pool or the broker is. 503 names each
part that is not usable, with why (crashed and restarting, no progress for
longer than its bound, a service out of reach).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import structlog
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from uptimed.api.context import Context, Readiness
from uptimed.api.errors import MALFORMED
from uptimed.supervisor import Part

log = structlog.get_logger()

router = APIRouter(tags=["health"], responses=MALFORMED)


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    ready: bool
    parts: dict[str, bool] = Field(description="each part's state: true when usable")
    problems: dict[str, str] = Field(default_factory=dict, description="why each part that is not usable is not")


@router.get("/healthz", response_model=Health, summary="The process answers")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "a part is not usable; `parts` says which, `problems` why"}},
    summary="Every part the daemon needs is usable",
)
async def readyz(response: Response, context: Context) -> Ready:
    try:
        states = dict(await context.readiness())
    except Exception as exc:  # noqa: BLE001 - an unanswerable readiness means not ready
        log.warning("api.readiness_failed", error_type=type(exc).__name__)
        states = {"readiness": "could not be determined"}
    parts = {name: state is True for name, state in states.items()}
    problems = {
        name: state if isinstance(state, str) else "not usable" for name, state in states.items() if state is not True
    }
    ready = bool(parts) and not problems
    if not ready:
        response.status_code = 503
    return Ready(ready=ready, parts=parts, problems=problems)


def daemon_readiness(
    *, services: Callable[[], Mapping[str, str | None]], parts: Callable[[], Iterable[Part]]
) -> Readiness:
    """The readiness of a running daemon, for :func:`uptimed.api.server.create_app`.

    ``services`` is :meth:`uptimed.watch.ServiceWatch.problems`; ``parts``
    returns the supervisor's parts. Each entry is True, or why it is not usable.
    """

    async def readiness() -> dict[str, bool | str]:
        states: dict[str, bool | str] = {name: problem or True for name, problem in services().items()}
        for part in parts():
            states[part.name] = part.problem() or True
        return states

    return readiness
