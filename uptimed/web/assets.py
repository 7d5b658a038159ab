"""The stylesheet and the script, served from memory under content-hashed URLs.

``static/css/*.css`` are joined (in name order) into one stylesheet and
``static/js/*.js`` into one script, so each page loads exactly two files that
browsers may cache forever: a new version of uptimed has new URLs.
Swagger UI for ``/docs`` is vendored too (``static/vendor``, gzipped).
Nothing is fetched from elsewhere at run time.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse

router = APIRouter(include_in_schema=False)


SWAGGER_UI_VERSION = "5.35.0"

_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    digest: str
    gzipped: bool = False


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
_VENDOR = {
    name: Asset(
        body=_STATIC.joinpath("vendor", "swagger-ui", f"{name}.gz").read_bytes(),
        media_type=media_type,
        digest=SWAGGER_UI_VERSION,
        gzipped=True,
    )
    for name, media_type in (
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
    )
}


def url(name: str) -> str:
    """Where ``name`` (``style.css``, ``app.js``, ``icon.svg``) is served in this version."""
    stem, dot, suffix = name.rpartition(".")
    return f"/assets/{stem}.{_ASSETS[name].digest}{dot}{suffix}"


def _serve(found: Asset | None, request: Request) -> Response:
    if found is None:
        return PlainTextResponse("no such asset in this version of uptimed\n", status_code=404)
    headers = {"Cache-Control": _FOREVER, "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
    body = found.body
    if found.gzipped:
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
        else:
            body = gzip.decompress(body)
    return Response(body, media_type=found.media_type, headers=headers)


@router.get("/assets/{file}")
async def asset(file: str, request: Request) -> Response:
    stem, _, suffix = file.rpartition(".")
    name, _, digest = stem.rpartition(".")
    found = _ASSETS.get(f"{name}.{suffix}")
    return _serve(found if found and found.digest == digest else None, request)


@router.get(f"/assets/swagger-ui-{SWAGGER_UI_VERSION}/{{file}}")
async def swagger_ui_asset(file: str, request: Request) -> Response:
    return _serve(_VENDOR.get(file), request)


_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


@functools.cache
def _docs_page() -> tuple[bytes, dict[str, str]]:
    """Swagger UI's page and the pages' security headers, its one inline script allowed by its hash."""
    from uptimed.web.templates import CONTENT_SECURITY_POLICY, SECURITY_HEADERS  # templates imports this module

    body = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="uptimed API",
        swagger_js_url=f"/assets/swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui-bundle.js",
        swagger_css_url=f"/assets/swagger-ui-{SWAGGER_UI_VERSION}/swagger-ui.css",
        swagger_favicon_url=url("icon.svg"),
    ).body
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(bytes(body))
    )
    policy = CONTENT_SECURITY_POLICY.replace("script-src 'self'", f"script-src 'self' {hashes}")
    return bytes(body), {**SECURITY_HEADERS, "Content-Security-Policy": policy, "Cache-Control": "no-cache"}


@router.get("/docs")
async def api_docs() -> HTMLResponse:
    """The API's interactive docs (Swagger UI), served from uptimed itself with the pages' security headers."""
    body, headers = _docs_page()
    return HTMLResponse(body, headers=headers)
