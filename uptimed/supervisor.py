"""One anyio task group that starts, watches and stops the daemon's parts.

A part is a named coroutine that runs until cancelled. When one crashes, the
supervisor logs it by name and starts it again after a backoff, so a lost
connection degrades the daemon instead of ending it. A configuration error is
not retried: it ends the daemon with the message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import structlog

from uptimed.config import ConfigError

log = structlog.get_logger()


@dataclass
class Part:
    """A long-running piece of the daemon: the scheduler of a region, the notifier, the API..."""

    name: str
    run: Callable[[], Awaitable[None]]
    drain: Callable[[], Awaitable[None]] | None = None
    """Finish work in hand and take no more (a graceful stop); cancelled at the deadline."""
    restarts: int = 0
    healthy: bool = False
    last_error: str | None = None


@dataclass
class Supervisor:
    parts: list[Part]
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 60.0
    """A part that ran this long before crashing restarts with the initial backoff."""
    _scope: anyio.CancelScope | None = field(default=None, init=False, repr=False)
    _stop_requested: bool = field(default=False, init=False, repr=False)

    async def run(self) -> None:
        """Run every part until :meth:`stop` is called or a configuration error occurs."""
        async with anyio.create_task_group() as tg:
            self._scope = tg.cancel_scope
            if self._stop_requested:  # stop() came before run(): start nothing
                return
            for part in self.parts:
                tg.start_soon(self._keep_running, part, name=part.name)
            await anyio.sleep_forever()

    async def shutdown(self, grace: float) -> None:
        """Let every part drain, for at most ``grace`` seconds, then cancel them all."""
        with anyio.move_on_after(grace) as scope:
            async with anyio.create_task_group() as tg:
                for part in self.parts:
                    if part.drain is not None and part.healthy:
                        tg.start_soon(part.drain)
        if scope.cancelled_caught:
            log.warning("daemon.drain_timeout", grace_s=grace)
        self.stop()

    def stop(self) -> None:
        """Cancel every part; safe to call before :meth:`run` has started."""
        self._stop_requested = True
        if self._scope is not None:
            self._scope.cancel()

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    async def _keep_running(self, part: Part) -> None:
        backoff = self.backoff_initial
        while True:
            started = time.monotonic()
            part.healthy = True
            try:
                await part.run()
                log.info("part.finished", part=part.name)
                return
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - a crashed part must not take the daemon down
                part.healthy = False
                part.restarts += 1
                part.last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() - started > self.stable_after:
                    backoff = self.backoff_initial
                log.exception("part.crashed", part=part.name, restart_in_s=round(backoff, 2), restarts=part.restarts)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
            finally:
                part.healthy = False
