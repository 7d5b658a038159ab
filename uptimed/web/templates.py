"""Jinja2 templates, their filters, and the one way pages are answered: :func:`render`.

Every page gets the same security headers: a Content-Security-Policy that
allows only this origin's stylesheet and script (no inline script or style,
no CDN), no framing, no referrer to other sites, and no caching of pages that
show a signed-in user's data.
"""

from __future__ import annotations

import contextvars
import math
import zoneinfo
from datetime import UTC, datetime, tzinfo
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from uptimed.rules.credentials import masked_target
from uptimed.web import assets

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def ms(value: float | None) -> str:
    """``"123 ms"``, ``"1.24 s"``, or an em dash when there is no figure."""
    if value is None:
        return "—"
    return f"{value:,.0f} ms" if value < 1000 else f"{value / 1000:,.2f} s"


def percent(value: float | None) -> str:
    """``"99.95%"``; rounded down so 99.999 never shows as 100%."""
    if value is None:
        return "—"
    if value >= 100:
        return "100%"
    return f"{math.floor(value * 100) / 100:.2f}%"


def duration(seconds: float | None) -> str:
    """``"2 h 5 min"``, ``"45 s"``: the two largest units."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size} {name}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``"3 min ago"``."""
    if value is None:
        return "never"
    delta = ((now or datetime.now(UTC)) - value).total_seconds()
    return "just now" if delta < 1 else f"{duration(delta)} ago"


def elapsed(value: datetime | None, now: datetime | None = None) -> str:
    """How long since ``value``: ``"3 min 5 s"``."""
    if value is None:
        return "—"
    return duration(((now or datetime.now(UTC)) - value).total_seconds())


ZONE_COOKIE = "uptimed_tz"
"""The browser's time zone, set by app.js: the default for a viewer who chose none."""

_zone: contextvars.ContextVar[tzinfo] = contextvars.ContextVar("zone", default=UTC)


def zone_named(name: str | None) -> tzinfo | None:
    """The IANA zone ``name``, None when it is not one."""
    if not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def viewer_zone(request: Request, user: Any = None) -> str:
    """The zone a page shows times in: the user's choice, else the browser's (its cookie), else UTC."""
    for name in (getattr(user, "time_zone", None), request.cookies.get(ZONE_COOKIE)):
        if zone_named(name) is not None:
            return str(name)
    return "UTC"


def when(value: datetime | None) -> Markup:
    """A ``<time>`` element in the viewer's zone, with the exact instant (UTC) for machines and tooltips."""
    if value is None:
        return Markup("—")
    iso = value.astimezone(UTC).isoformat(timespec="seconds")
    local = value.astimezone(_zone.get())
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(iso, local.strftime("%Y-%m-%d %H:%M:%S %Z"))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("uptimed.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=ms, percent=percent, duration=duration, ago=ago, elapsed=elapsed, when=when, masked_target=masked_target
    )
    env.globals.update(asset=assets.url)
    return env


environment = _environment()


def render(
    request: Request, template: str, *, status_code: int = 200, private: bool = True, **context: Any
) -> HTMLResponse:
    """The page ``template`` with ``context``; ``private`` pages are never cached."""
    context.setdefault("visit", getattr(request.state, "visit", None))
    context.setdefault("notice", None)
    visit = context["visit"]
    zone = viewer_zone(request, visit.user if visit is not None else None)
    token = _zone.set(zone_named(zone) or UTC)
    try:
        html = environment.get_template(template).render(
            request=request, path=request.url.path, time_zone=zone, **context
        )
    finally:
        _zone.reset(token)
    headers = dict(SECURITY_HEADERS)
    # Public pages (the status page) may be cached, but must be checked again: they refresh themselves.
    headers["Cache-Control"] = "no-store" if private else "no-cache"
    return HTMLResponse(html, status_code=status_code, headers=headers)


def fragment(request: Request, template: str, **context: Any) -> HTMLResponse:
    """Part of a page (fetched by app.js to refresh it in place)."""
    return render(request, template, **context)


__all__ = ["environment", "escape", "fragment", "render"]
