"""The service watch: an outage is a few lines however loud the client libraries are."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import anyio
import pytest
import structlog
from structlog.testing import capture_logs

from uptimed import log as uptimed_log
from uptimed.config import LogSettings
from uptimed.watch import ServiceWatch


class Switch:
    """A probe that fails while ``down``."""

    def __init__(self) -> None:
        self.down = False

    async def __call__(self) -> None:
        if self.down:
            raise ConnectionRefusedError("[Errno 111] Connect call failed ('127.0.0.1', 29092)")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """uptimed's logging as the daemon sets it up (JSON), into a buffer; restored afterwards."""
    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    uptimed_log.configure(LogSettings(format="json", level="info"), stream=buffer)
    yield buffer
    uptimed_log.fold_library_records(None)
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def library_error(message: str, name: str = "aiokafka.consumer.fetcher") -> None:
    logging.getLogger(name).error(message)


async def test_an_outage_is_three_kinds_of_line_and_library_records_are_only_counted(stream: io.StringIO) -> None:
    watch = ServiceWatch(probe_every=0.05, summary_every=0.5)
    kafka = Switch()
    watch.add("kafka", kafka)
    uptimed_log.fold_library_records(watch.library_record)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.run)
            await anyio.sleep(0.1)
            kafka.down = True
            for n in range(400):  # aiokafka's pace while a broker is down, a little faster
                library_error(f"Unable connect to node with id 1: [Errno 111] Connection refused ({n})")
                await anyio.sleep(0.002)
            kafka.down = False
            await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
    finally:
        uptimed_log.fold_library_records(None)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    assert events[0] == "service.unreachable" and events[-1] == "service.back"
    assert set(events) <= {"service.unreachable", "service.still_unreachable", "service.back"}
    assert len(events) <= 5
    still = sum(line.get("folded", 0) for line in lines if line["event"] == "service.still_unreachable")
    assert still + lines[-1]["folded"] >= 400 or lines[-1]["folded"] >= 400
    assert all(line["service"] == "kafka" for line in lines)


async def test_library_records_while_the_service_answers_are_one_summary_never_an_error() -> None:
    watch = ServiceWatch(probe_every=0.05, summary_every=60)
    watch.add("kafka", Switch())
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.run)
            for _ in range(3):
                watch.library_record(
                    "kafka",
                    logging.makeLogRecord(
                        {
                            "name": "aiokafka.consumer.group_coordinator",
                            "levelno": logging.ERROR,
                            "msg": "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
                        }
                    ),
                )
            await anyio.sleep(0.2)
            watch.library_record(
                "kafka",
                logging.makeLogRecord(
                    {
                        "name": "aiokafka.producer",
                        "levelno": logging.ERROR,
                        "msg": "something new",
                    }
                ),
            )
            await anyio.sleep(0.2)
            tg.cancel_scope.cancel()
        watch.flush()  # at exit: what is still folded is written
    notices = [e for e in logs if e["event"] == "service.client_messages"]
    assert [(n["log_level"], n["count"]) for n in notices] == [("info", 3), ("warning", 1)]
    assert notices[0]["messages"] == {
        "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError": 3
    }
    assert not [e for e in logs if e["log_level"] == "error"]


def test_without_a_watch_library_records_are_written_as_they_come(stream: io.StringIO) -> None:
    library_error("Unable to update metadata from [1]", name="aiokafka.cluster")
    assert json.loads(stream.getvalue())["event"] == "Unable to update metadata from [1]"


async def test_what_the_libraries_say_just_after_an_outage_is_its_echo_not_news() -> None:
    watch = ServiceWatch(probe_every=0.05, summary_every=10)
    kafka = Switch()
    watch.add("kafka", kafka)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.run)
            kafka.down = True
            await anyio.sleep(0.2)
            kafka.down = False
            await anyio.sleep(0.2)
            watch.library_record(
                "kafka",
                logging.makeLogRecord(
                    {
                        "name": "aiokafka.consumer.group_coordinator",
                        "levelno": logging.ERROR,
                        "msg": "Heartbeat session expired - marking coordinator dead",
                    }
                ),
            )
            await anyio.sleep(0.3)
            tg.cancel_scope.cancel()
        watch.flush()
    assert [e["event"] for e in logs if e["log_level"] != "debug"] == ["service.unreachable", "service.back"]
