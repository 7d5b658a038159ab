"""``/healthz`` and ``/readyz``: for load balancers and systemd, without auth.

``/healthz`` says the process answers. ``/readyz`` asks each part the
daemon depends on (PostgreSQL, Redis, the Kafka producer, the consumers and
other supervised parts) and answers 200 only when every one is usable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import anyio
import structlog
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from uptimed.api.context import Context, Readiness
from uptimed.api.errors import MALFORMED

log = structlog.get_logger()

router = APIRouter(tags=["health"], responses=MALFORMED)

READINESS_TIMEOUT_S = 5.0
"""The whole of /readyz; each service check gets less."""


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    ready: bool
    parts: dict[str, bool] = Field(description="each part's state: true when usable")


@router.get("/healthz", response_model=Health, summary="The process answers")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz", response_model=Ready,
    responses={503: {"model": Ready, "description": "a part is not usable; `parts` says which"}},
    summary="Every part the daemon needs is usable",
)
async def readyz(response: Response, context: Context) -> Ready:
    parts: dict[str, bool] = {}
    try:
        with anyio.fail_after(READINESS_TIMEOUT_S):
            parts = dict(await context.readiness())
    except Exception as exc:  # noqa: BLE001 - an unanswerable probe means not ready
        log.warning("api.readiness_failed", error_type=type(exc).__name__)
        parts["readiness"] = False
    ready = bool(parts) and all(parts.values())
    if not ready:
        response.status_code = 503
    return Ready(ready=ready, parts=parts)


def service_readiness(
    *,
    pool: Any,
    redis: Any,
    producer: Any,
    parts: Callable[[], Iterable[Any]],
    timeout: float = 2.0,
) -> Readiness:
    """The readiness of a running daemon, for :func:`uptimed.api.server.create_app`.

    ``pool`` is the asyncpg pool, ``redis`` the Redis client, ``producer``
    the started ``AIOKafkaProducer``; ``parts`` returns the supervisor's
    parts (each with ``name`` and ``healthy``), consumers among them.
    """

    async def postgresql() -> bool:
        return await pool.fetchval("SELECT 1") == 1

    async def redis_ping() -> bool:
        return bool(await redis.ping())

    async def kafka_producer() -> bool:
        # A metadata request answered by a broker: the producer can reach the cluster.
        return bool(await producer.client.fetch_all_metadata())

    async def check(probe: Callable[[], Any]) -> bool:
        try:
            with anyio.fail_after(timeout):
                return await probe()
        except Exception:  # noqa: BLE001 - any failure means not usable
            return False

    async def readiness() -> dict[str, bool]:
        states: dict[str, bool] = {}

        async def run(name: str, probe: Callable[[], Any]) -> None:
            states[name] = await check(probe)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "postgresql", postgresql)
            tg.start_soon(run, "redis", redis_ping)
            tg.start_soon(run, "kafka_producer", kafka_producer)
        for part in parts():
            states[part.name] = bool(part.healthy)
        return states

    return readiness
