"""What every route works with: the pool, the channels, the settings, the HTTP client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
import httpx
from fastapi import Depends, Request

from uptimed.channels.registry import ChannelRegistry
from uptimed.config import Settings

Readiness = Callable[[], Awaitable[dict[str, bool]]]
"""Each part's state (``{"postgresql": True, "kafka_producer": False, ...}``)."""


@dataclass(frozen=True)
class ApiContext:
    pool: asyncpg.Pool
    registry: ChannelRegistry
    settings: Settings
    http: httpx.AsyncClient
    """For test notifications: the same kind of client the dispatcher delivers with."""
    readiness: Readiness


def api_context(request: Request) -> ApiContext:
    return request.app.state.context


Context = Annotated[ApiContext, Depends(api_context)]
