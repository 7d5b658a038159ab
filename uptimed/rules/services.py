"""What the rules need from the process that serves the API and the pages."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
import httpx

from uptimed.channels.registry import ChannelRegistry
from uptimed.config import Settings
from uptimed.rules.quotas import Limits
from uptimed.rules.targets import TargetPolicy


@dataclass(frozen=True)
class Services:
    """The pool, the installed channels, the settings, and the HTTP clients test notifications go out with."""

    pool: asyncpg.Pool
    registry: ChannelRegistry
    settings: Settings
    http: httpx.AsyncClient
    """The same kind of client the dispatcher delivers users' integrations with (made with ``policy``)."""
    policy: TargetPolicy = field(kw_only=True)
    """What users' monitors and integrations may reach (:mod:`uptimed.rules.targets`)."""
    limits: Limits = field(kw_only=True)
    """``[quotas]`` and the rates counted so far (:mod:`uptimed.rules.quotas`)."""
    trusted_http: httpx.AsyncClient | None = field(default=None, kw_only=True)
    """For integrations declared in the config file; None: ``http``."""
