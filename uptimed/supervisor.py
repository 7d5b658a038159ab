"""One anyio task group that starts, watches and stops the daemon's parts.

A part is a named coroutine that runs until cancelled. When one crashes, the
supervisor logs it by name and starts it again after a backoff, so a lost
connection degrades the daemon instead of ending it. (The configuration is
checked before any part starts: no part fails on it.)

Each part keeps its own state for readiness, answered without any I/O:
running, crashed and backing off, or stalled. A part that has a
``progress_bound`` calls :func:`progress` whenever it does useful work or
polls (a consumer after each poll, the dispatcher after each claim); one that
has not done so for longer than its bound is stalled. A crash while a service
is out of reach (see :class:`~uptimed.watch.ServiceWatch`) is a consequence
of the outage, not news: it is logged once per part and outage, without a
traceback, and counted in the outage's own lines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from anyio.abc import TaskStatus

if TYPE_CHECKING:
    from uptimed.watch import ServiceWatch

log = structlog.get_logger()

_running: ContextVar[Part | None] = ContextVar("uptimed_part", default=None)


def progress() -> None:
    """Tell the supervisor that the part running this code did useful work or polled.

    Tasks a part starts inherit it. Outside a supervised part (a test that
    drives a component directly) this does nothing.
    """
    part = _running.get()
    if part is not None:
        part.progress()


@dataclass
class Part:
    """A long-running piece of the daemon: the scheduler of a region, the notifier, the API..."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    drain: Callable[[], Coroutine[Any, Any, None]] | None = None
    """Finish work in hand and take no more (a graceful stop); cancelled at the deadline."""
    progress_bound: float | None = None
    """Seconds the part may go without calling :func:`progress` while it runs; None: running is enough."""
    restarts: int = 0
    healthy: bool = False
    """Running (not crashed, not finished)."""
    last_error: str | None = None
    started_at: float | None = None
    """Monotonic time of the current run's start."""
    last_progress: float | None = None
    """Monotonic time of the last :func:`progress` in the current run."""
    restart_at: float | None = None
    """While it backs off after a crash: the monotonic time it starts again."""

    def progress(self) -> None:
        self.last_progress = time.monotonic()

    def idle_for(self, now: float | None = None) -> float | None:
        """Seconds since the part last made progress (or started, when it has not yet); None when not running."""
        if not self.healthy or self.started_at is None:
            return None
        now = time.monotonic() if now is None else now
        return now - (self.last_progress if self.last_progress is not None else self.started_at)

    def stalled(self, now: float | None = None) -> bool:
        """Running, but without progress for longer than its bound."""
        idle = self.idle_for(now)
        return self.progress_bound is not None and idle is not None and idle > self.progress_bound

    def problem(self, now: float | None = None) -> str | None:
        """Why the part is not usable now, in a few words; None when it is."""
        now = time.monotonic() if now is None else now
        if self.restart_at is not None:
            return f"crashed ({self.last_error}); restarting in {max(self.restart_at - now, 0):.1f} s"
        if not self.healthy:
            return "not running"
        if self.stalled(now):
            return f"no progress for {self.idle_for(now):.0f} s (bound {self.progress_bound:g} s)"
        if self.progress_bound is not None and self.restarts and self.last_progress is None:
            return f"restarted after: {self.last_error}; no progress yet"
        return None


@dataclass
class Supervisor:
    parts: list[Part]
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 60.0
    """A part that ran this long before crashing restarts with the initial backoff."""
    watch: ServiceWatch | None = None
    """Tells a crash caused by an unreachable service from a bug."""
    _scope: anyio.CancelScope | None = field(default=None, init=False, repr=False)
    _stop_requested: bool = field(default=False, init=False, repr=False)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every part until :meth:`stop` is called.

        Started (for ``TaskGroup.start``) once every part is on its way.
        """
        async with anyio.create_task_group() as tg:
            self._scope = tg.cancel_scope
            if self._stop_requested:  # stop() came before run(): start nothing
                task_status.started()
                return
            for part in self.parts:
                part.healthy, part.started_at = True, time.monotonic()
                tg.start_soon(self._keep_running, part, name=part.name)
            task_status.started()
            await anyio.sleep_forever()
        if not self._stop_requested:  # never by design (see _crash); if it ever is, exit non-zero, loudly
            raise RuntimeError("every part ended without a stop being asked for")

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

    def problems(self) -> dict[str, str]:
        """Each part that is not usable now, with why."""
        now = time.monotonic()
        return {part.name: problem for part in self.parts if (problem := part.problem(now)) is not None}

    async def _keep_running(self, part: Part) -> None:
        _running.set(part)  # this task's context: part.run() and the tasks it starts see it
        backoff = self.backoff_initial
        while True:
            started = time.monotonic()
            part.started_at, part.last_progress, part.restart_at = started, None, None
            part.healthy = True
            try:
                await part.run()
                if _stopping():
                    return
                raise PartEnded("returned without being stopped")  # a part runs until cancelled: restart it
            except BaseException as raised:
                exc = _crash(raised)
                part.healthy = False
                part.restarts += 1
                part.last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() - started > self.stable_after:
                    backoff = self.backoff_initial
                part.restart_at = time.monotonic() + backoff
                cause = await self.watch.unreachable_cause(exc) if self.watch is not None else None
                if cause is None:
                    log.exception(
                        "part.crashed", part=part.name, restart_in_s=round(backoff, 2), restarts=part.restarts
                    )
                else:
                    # A consequence of the outage, not news: the first crash of this part in it says so, the
                    # service's own lines count the rest.
                    cause.folded += 1
                    level = log.warning if part.name not in cause.parts else log.debug
                    cause.parts.add(part.name)
                    level(
                        "part.interrupted",
                        part=part.name,
                        service=cause.service,
                        error=_short(part.last_error),
                        restart_in_s=round(backoff, 2),
                        exc_info=exc is not raised,  # a stray cancellation: where the library cancelled it
                    )
                with anyio.move_on_after(backoff):
                    if cause is None:
                        await anyio.sleep_forever()
                    else:
                        await cause.ended.wait()  # back sooner: start again at once
                backoff = min(backoff * 2, self.backoff_max)
            finally:
                part.healthy = False


class PartEnded(Exception):
    """A part's coroutine returned: parts run until they are cancelled, so this is a bug, restarted like a crash."""


class StrayCancellation(Exception):
    """A part ended in CancelledError that no cancel scope sent: a library cancelled a future the part awaited."""


def is_stray_cancellation(raised: BaseException) -> bool:
    """A CancelledError that nobody stopping this task sent.

    aiokafka, for one, can cancel a request's future when the broker goes away, and the task awaiting it sees
    CancelledError although nobody stopped it. anyio takes such a task's end for a cancellation and cancels its
    task group: in the supervisor's, every part ended, the API first, and the daemon exited 0 (CI saw it once
    during a broker outage). A real stop always leaves a cancellation pending on the task (``Task.cancelling()``).
    """
    return isinstance(raised, asyncio.CancelledError) and not _stopping()


def _stopping() -> bool:
    """A cancellation is pending on this task: a cancel scope around it (a stop, a deadline) was cancelled."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _crash(raised: BaseException) -> Exception:
    """What ``raised`` is to the supervisor: a crash to log and restart from; re-raised when it is a real stop."""
    if isinstance(raised, Exception):
        return raised
    if is_stray_cancellation(raised):
        return StrayCancellation("cancelled by a library, not by a stop")
    raise raised


def _short(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
