"""Request bodies the API accepts: at most 64 KiB, and JSON that PostgreSQL can store.

Checked once, before any route, so every route is bounded the same way
(but ``/ping/``, which keeps the first bytes of whatever a job sends):
a larger body answers 413; a JSON body holding a NUL character (which
PostgreSQL's text and jsonb refuse) or a non-finite number (``NaN``,
``Infinity``, ``1e999``) answers 422 naming the field. Anything else goes on
to FastAPI untouched; malformed JSON answers 422 here too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from uptimed.api.errors import (
    FieldProblem,
    field_problem,
    problem_response,
    validation_response,
)

MAX_BODY_BYTES = 64 * 1024

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def json_problem(body: bytes) -> FieldProblem | None:
    """Why this JSON body cannot be read or stored, or None when it can."""
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except _NonFinite:
        return field_problem(("body",), "numbers must be finite (no NaN or Infinity)", "finite_number")
    except RecursionError:
        return field_problem(("body",), "JSON is nested too deeply", "json_invalid")
    except json.JSONDecodeError as exc:
        return field_problem(("body",), f"invalid JSON: {exc.msg} at position {exc.pos}", "json_invalid")
    except ValueError:  # not UTF-8, or an integer too long to read
        return field_problem(("body",), "invalid JSON", "json_invalid")
    stack: list[tuple[tuple[str | int, ...], Any]] = [(("body",), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return field_problem(path, "text may not contain NUL characters", "string_nul")
        elif isinstance(value, float):
            if not math.isfinite(value):
                return field_problem(path, "numbers must be finite", "finite_number")
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return field_problem(path, "keys may not contain NUL characters", "string_nul")
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
    return None


def _is_json(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True  # FastAPI reads a body without a content type as JSON too


class BodyGuard:
    """ASGI middleware: read the body once (bounded), check it, then hand it on."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A heartbeat's ping body is a job's output of any size and format: /ping reads only its first bytes.
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY or scope["path"].startswith("/ping/"):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        declared = next((v for k, v in headers if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(headers):
            problem = json_problem(body)
            if problem is not None:
                await validation_response([problem])(scope, receive, send)
                return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, f"the body is larger than {self.max_bytes // 1024} KiB")
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
