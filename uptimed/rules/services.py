"""What the rules need from the process that serves the API and the pages."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import httpx

from uptimed.channels.registry import ChannelRegistry
from uptimed.config import Settings


@dataclass(frozen=True)
class Services:
    """The pool, the installed channels, the settings, and the HTTP client test notifications go out with."""

    pool: asyncpg.Pool
    registry: ChannelRegistry
    settings: Settings
    http: httpx.AsyncClient
    """The same kind of client the dispatcher delivers with."""
