"""The supervisor restarts a crashed part with backoff, reports each part's state, and stops when asked."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
from structlog.testing import capture_logs

from uptimed.supervisor import Part, Supervisor, progress
from uptimed.watch import ServiceWatch


async def logs_until(event: anyio.Event, supervisor: Supervisor) -> list[dict[str, Any]]:
    """What ``supervisor`` logs from its start until ``event`` (within 5 s), when it is stopped."""
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.run)
            with anyio.fail_after(5):
                await event.wait()
            supervisor.stop()
    return logs


async def test_a_crashed_part_is_logged_by_name_and_restarted_with_backoff() -> None:
    attempts: list[float] = []
    running = anyio.Event()

    async def flaky() -> None:
        attempts.append(anyio.current_time())
        if len(attempts) < 3:
            raise ConnectionError("redis went away")
        running.set()
        await anyio.sleep_forever()

    supervisor = Supervisor([Part("probe:eu", flaky)], backoff_initial=0.05)
    logs = await logs_until(running, supervisor)
    crashes = [entry for entry in logs if entry["event"] == "part.crashed"]
    assert [c["part"] for c in crashes] == ["probe:eu", "probe:eu"]
    assert supervisor.part("probe:eu").restarts == 2
    assert "ConnectionError: redis went away" in supervisor.part("probe:eu").last_error
    # The second wait is twice the first.
    assert attempts[2] - attempts[1] >= 2 * 0.05 * 0.9 and attempts[1] - attempts[0] >= 0.05 * 0.9


async def test_stop_before_run_is_not_lost() -> None:
    started = []

    async def part() -> None:
        started.append(True)
        await anyio.sleep_forever()

    supervisor = Supervisor([Part("scheduler:eu", part)])
    supervisor.stop()
    with anyio.fail_after(2):
        await supervisor.run()
    assert started == []


async def test_a_part_is_named_while_it_backs_off_then_ready_once_it_makes_progress() -> None:
    crashes = 0
    progressing = anyio.Event()

    async def consumer() -> None:
        nonlocal crashes
        if crashes < 1:
            crashes += 1
            raise RuntimeError("lost its way")
        progress()
        progressing.set()
        await anyio.sleep_forever()

    part = Part("notifier", consumer, progress_bound=5)
    supervisor = Supervisor([part], backoff_initial=0.3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(supervisor.run)
        with anyio.fail_after(2):
            while part.restart_at is None:
                await anyio.sleep(0.01)
        assert supervisor.problems()["notifier"].startswith("crashed (RuntimeError: lost its way); restarting in")
        with anyio.fail_after(2):
            await progressing.wait()
        assert supervisor.problems() == {}
        supervisor.stop()


def test_a_part_without_progress_for_longer_than_its_bound_is_stalled() -> None:
    async def never() -> None: ...

    part = Part("dispatcher", never, progress_bound=10)
    part.healthy, part.started_at = True, 100.0
    assert part.problem(now=105.0) is None
    part.last_progress = 104.0
    assert part.problem(now=113.0) is None and not part.stalled(now=113.0)
    assert part.problem(now=115.0) == "no progress for 11 s (bound 10 s)" and part.stalled(now=115.0)
    unbounded = Part("api", never)
    unbounded.healthy, unbounded.started_at = True, 0.0
    assert unbounded.problem(now=1e6) is None
    assert Part("retention", never).problem() == "not running"


def test_progress_outside_a_part_does_nothing() -> None:
    progress()


async def test_a_crash_during_an_outage_is_one_warning_per_part_and_restarts_when_the_service_is_back() -> None:
    watch = ServiceWatch(probe_timeout=0.5)
    reachable = False

    async def probe() -> None:
        if not reachable:
            raise ConnectionRefusedError("refused")

    watch.add("postgresql", probe)
    started: list[float] = []
    running = anyio.Event()

    async def part() -> None:
        started.append(anyio.current_time())
        if not reachable:
            raise ConnectionRefusedError("[Errno 111] Connect call failed")
        running.set()
        await anyio.sleep_forever()

    supervisor = Supervisor([Part("evaluator", part)], backoff_initial=0.05, backoff_max=10, watch=watch)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.run)
            with anyio.fail_after(5):
                while len(started) < 6:  # 0.05 + 0.1 + 0.2 + 0.4 + 0.8: the backoff grows to 1.6 s
                    await anyio.sleep(0.01)
            reachable = True
            back = anyio.current_time()
            await watch._check(watch._services["postgresql"])
            with anyio.fail_after(1):  # not after the remaining 1.6 s of backoff
                await running.wait()
            supervisor.stop()
    assert anyio.current_time() - back < 0.5
    interrupted = [e for e in logs if e["event"] == "part.interrupted"]
    assert [e["log_level"] for e in interrupted].count("warning") == 1
    assert not [e for e in logs if e["event"] == "part.crashed"]
    assert [e["event"] for e in logs if e["event"].startswith("service.")] == ["service.unreachable", "service.back"]
    assert next(e for e in logs if e["event"] == "service.back")["folded"] >= 5


async def test_a_cancellation_nobody_asked_for_is_a_crash_of_that_part_not_a_silent_stop_of_all() -> None:
    """A library may cancel a future a part awaits (aiokafka's requests, when the broker goes away): the part
    then ends in CancelledError without anyone stopping it. Taken for a stop, it ended every part in silence."""
    crashes = 0
    restarted = anyio.Event()
    api_running = anyio.Event()

    async def evaluator() -> None:
        nonlocal crashes
        if crashes:
            restarted.set()
            await anyio.sleep_forever()
        crashes += 1
        request: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(request.cancel)  # the client gives up on its request
        await request

    async def api() -> None:
        api_running.set()
        await anyio.sleep_forever()

    supervisor = Supervisor([Part("evaluator", evaluator), Part("api", api)], backoff_initial=0.01)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.run)
            with anyio.fail_after(5):
                await restarted.wait()
            assert supervisor.part("api").healthy and api_running.is_set()
            supervisor.stop()
    crash = next(entry for entry in logs if entry["event"] == "part.crashed")
    assert crash["part"] == "evaluator" and crash["exc_info"]
    assert supervisor.part("evaluator").last_error == "StrayCancellation: cancelled by a library, not by a stop"


async def test_a_part_that_returns_unasked_is_restarted_like_a_crash() -> None:
    runs = 0
    again = anyio.Event()

    async def api() -> None:  # as when a server gives up by itself
        nonlocal runs
        runs += 1
        if runs > 1:
            again.set()
            await anyio.sleep_forever()

    supervisor = Supervisor([Part("api", api)], backoff_initial=0.01)
    logs = await logs_until(again, supervisor)
    assert [entry["part"] for entry in logs if entry["event"] == "part.crashed"] == ["api"]
    assert supervisor.part("api").last_error == "PartEnded: returned without being stopped"


async def test_a_stray_cancellation_during_an_outage_is_folded_into_it_with_its_traceback() -> None:
    watch = ServiceWatch(probe_timeout=0.5)

    async def broker() -> None:
        raise ConnectionRefusedError("refused")

    watch.add("kafka", broker)
    attempts = 0
    again = anyio.Event()

    async def notifier() -> None:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            again.set()
            await anyio.sleep_forever()
        request: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(request.cancel)
        await request

    supervisor = Supervisor([Part("notifier", notifier)], backoff_initial=0.01, watch=watch)
    logs = await logs_until(again, supervisor)
    (interrupted,) = [e for e in logs if e["event"] == "part.interrupted"]
    assert interrupted["service"] == "kafka" and interrupted["log_level"] == "warning" and interrupted["exc_info"]
    assert not [e for e in logs if e["event"] == "part.crashed"]
