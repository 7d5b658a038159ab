"""``/badge/{key}/...svg``: a monitor's public badges, for a README or a wiki (opt-in, see :mod:`uptimed.rules.badges`).

Three badges, each one figure in a small SVG: ``status.svg`` (up, down, slow,
maintenance, ...), ``uptime.svg?period=24h|7d|30d`` (maintenance left out)
and ``response.svg`` (the last response time). No sign-in, no cookies read,
nothing else of the monitor: not its name, target or errors. Cacheable for a
minute, so a busy page does not query for every view.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from markupsafe import escape

from uptimed.rules.badges import Figures, Period, figures
from uptimed.web.context import Context
from uptimed.web.templates import percent

router = APIRouter(include_in_schema=False)

MAX_AGE_S = 60
_COLOURS = {
    "up": "#2e7d32",
    "down": "#c62828",
    "slow": "#b26a00",
    "maintenance": "#1565c0",
    "paused": "#616161",
    "unknown": "#616161",
}
_HEADERS = {
    "Cache-Control": f"public, max-age={MAX_AGE_S}",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


def svg(label: str, value: str, colour: str) -> str:
    """A two-part badge: ``label`` on grey, ``value`` on ``colour``; its text is its accessible name too."""
    left, right = _width(label), _width(value)
    total = left + right
    text = f"{label}: {value}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{escape(text)}">'
        f"<title>{escape(text)}</title>"
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:g}" y="14">{escape(label)}</text>'
        f'<text x="{left + right / 2:g}" y="14">{escape(value)}</text>'
        "</g></svg>"
    )


def _width(text: str) -> int:
    return 10 + round(len(text) * 6.6)


def _uptime_colour(value: float | None) -> str:
    if value is None:
        return _COLOURS["unknown"]
    if value >= 99.9:
        return _COLOURS["up"]
    return _COLOURS["slow"] if value >= 99 else _COLOURS["down"]


def _answer(body: str, *, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="image/svg+xml", headers=_HEADERS)


async def _figures(context: Context, key: str) -> Figures | Response:
    found = await figures(context.pool, key, silence_intervals=context.settings.evaluate.region_silence)
    if found is None:
        return _answer(svg("badge", "not found", _COLOURS["unknown"]), status_code=404)
    return found


@router.get("/badge/{key}/status.svg")
async def status_badge(key: str, context: Context) -> Response:
    found = await _figures(context, key)
    if isinstance(found, Response):
        return found
    return _answer(svg("status", found.status, _COLOURS.get(found.status, _COLOURS["unknown"])))


@router.get("/badge/{key}/uptime.svg")
async def uptime_badge(key: str, context: Context, period: Annotated[Period, Query()] = "30d") -> Response:
    found = await _figures(context, key)
    if isinstance(found, Response):
        return found
    value = found.uptime[period]
    return _answer(svg(f"uptime {period}", percent(value), _uptime_colour(value)))


@router.get("/badge/{key}/response.svg")
async def response_badge(key: str, context: Context) -> Response:
    found = await _figures(context, key)
    if isinstance(found, Response):
        return found
    ms = found.response_time_ms
    value = "—" if ms is None else (f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s")
    return _answer(svg("response", value, _COLOURS["up"] if ms is not None else _COLOURS["unknown"]))
