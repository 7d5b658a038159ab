"""The web pages, served by the daemon beside the API: server-rendered, no build step, no CDN.

:func:`install` adds the pages to an app (:mod:`uptimed.app` composes them
with the API). Pages answer HTML, errors too (:mod:`uptimed.web.errors`).
Like the API, they are a thin face over :mod:`uptimed.rules`; they never
import the API.
"""

from __future__ import annotations

from fastapi import FastAPI

from uptimed.web import (
    account,
    assets,
    auth,
    badges,
    dashboard,
    escalation,
    incidents,
    integrations,
    maintenance,
    monitors,
    notifications,
    preferences,
    status,
)

PAGES = (
    assets,
    auth,
    account,
    dashboard,
    monitors,
    incidents,
    status,
    integrations,
    escalation,
    notifications,
    maintenance,
    badges,
    preferences,
)


def install(app: FastAPI) -> None:
    """Add the pages to ``app``."""
    for module in PAGES:
        app.include_router(module.router)
