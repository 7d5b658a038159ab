"""Named points where a fault test can freeze the daemon at an exact step.

``UPTIMED_FAILPOINTS=notify.before_delivery`` makes :func:`failpoint` with
that name log ``failpoint.hit`` and wait forever, so a test can SIGKILL the
process in a known state (intents written, nothing delivered). Unset in
production: then each call is a set lookup.
"""

from __future__ import annotations

import os

import anyio
import structlog

log = structlog.get_logger()

_ACTIVE = frozenset(name.strip() for name in os.environ.get("UPTIMED_FAILPOINTS", "").split(",") if name.strip())


async def failpoint(name: str) -> None:
    if name in _ACTIVE:
        log.warning("failpoint.hit", name=name)
        await anyio.sleep_forever()
