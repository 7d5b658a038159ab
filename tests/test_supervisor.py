"""The supervisor restarts a crashed part with backoff, and stops for a configuration error."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from uptimed.config import ConfigError, ConfigProblem
from uptimed.supervisor import Part, Supervisor


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
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.run)
            with anyio.fail_after(5):
                await running.wait()
            supervisor.stop()
    crashes = [entry for entry in logs if entry["event"] == "part.crashed"]
    assert [c["part"] for c in crashes] == ["probe:eu", "probe:eu"]
    assert supervisor.part("probe:eu").restarts == 2
    assert "ConnectionError: redis went away" in supervisor.part("probe:eu").last_error
    # The second wait is twice the first.
    assert attempts[2] - attempts[1] >= 2 * 0.05 * 0.9 and attempts[1] - attempts[0] >= 0.05 * 0.9


async def test_a_configuration_error_ends_the_supervisor() -> None:
    async def misconfigured() -> None:
        raise ConfigError(Path("uptimed.toml"), [ConfigProblem("kafka.topics.checks", "topic does not exist")])

    async def healthy() -> None:
        await anyio.sleep_forever()

    supervisor = Supervisor([Part("evaluator", misconfigured), Part("notifier", healthy)], backoff_initial=0.01)
    with pytest.raises(ExceptionGroup) as raised, anyio.fail_after(5):
        await supervisor.run()
    assert raised.group_contains(ConfigError)


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
