"""The stylesheet and the script, served from memory under content-hashed URLs.

``static/css/*.css`` are joined (in name order) into one stylesheet and
``static/js/*.js`` into one script, so each page loads exactly two files that
browsers may cache forever: a new version of uptimed has new URLs.
Nothing is fetched from elsewhere at run time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    digest: str


def _asset(body: bytes, media_type: str) -> Asset:
    return Asset(body=body, media_type=media_type, digest=hashlib.sha256(body).hexdigest()[:12])


def _bundle(folder: str, suffix: str, media_type: str) -> Asset:
    root = _STATIC.joinpath(folder)
    parts = sorted((p for p in root.iterdir() if p.name.endswith(suffix)), key=lambda p: p.name)
    return _asset(b"\n".join(f"/* {p.name} */\n".encode() + p.read_bytes() for p in parts), media_type)


_STATIC = resources.files("uptimed.web").joinpath("static")
_ASSETS = {
    "style.css": _bundle("css", ".css", "text/css; charset=utf-8"),
    "app.js": _bundle("js", ".js", "text/javascript; charset=utf-8"),
    "icon.svg": _asset(_STATIC.joinpath("icon.svg").read_bytes(), "image/svg+xml"),
}


def url(name: str) -> str:
    """Where ``name`` (``style.css``, ``app.js``, ``icon.svg``) is served in this version."""
    stem, dot, suffix = name.rpartition(".")
    return f"/assets/{stem}.{_ASSETS[name].digest}{dot}{suffix}"


@router.get("/assets/{file}")
async def asset(file: str) -> Response:
    stem, _, suffix = file.rpartition(".")
    name, _, digest = stem.rpartition(".")
    found = _ASSETS.get(f"{name}.{suffix}")
    if found is None or digest != found.digest:
        return PlainTextResponse("no such asset in this version of uptimed\n", status_code=404)
    return Response(
        found.body,
        media_type=found.media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"},
    )
