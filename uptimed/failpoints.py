"""Named points where a fault test can freeze the daemon at an exact step.

``UPTIMED_FAILPOINTS=notify.before_delivery`` makes :func:`failpoint` with
that name log ``failpoint.hit`` and wait forever, so a test can SIGKILL the
process in a known state (intents written, nothing delivered);
``name=2`` pauses there for 2 seconds instead, so a test can stop the
daemon in the middle of that step. Unset in production: then each call is a
dict lookup.
"""

from __future__ import annotations

import os

import anyio
import structlog

log = structlog.get_logger()


def _parse(spec: str) -> dict[str, float | None]:
    """``"a,b=2"`` -> ``{"a": None, "b": 2.0}`` (None: forever)."""
    active: dict[str, float | None] = {}
    for item in spec.split(","):
        name, _, seconds = item.strip().partition("=")
        if name:
            active[name] = float(seconds) if seconds else None
    return active


_ACTIVE = _parse(os.environ.get("UPTIMED_FAILPOINTS", ""))


async def failpoint(name: str) -> None:
    if name in _ACTIVE:
        pause = _ACTIVE[name]
        log.warning("failpoint.hit", name=name, seconds=pause)
        if pause is None:
            await anyio.sleep_forever()
        else:
            await anyio.sleep(pause)
