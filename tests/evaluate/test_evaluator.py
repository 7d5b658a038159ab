"""The evaluator in this process against the real Kafka and PostgreSQL, results fed by hand.

Feeding results straight to ``checks`` lets a test say exactly what was
checked when: a backlog from 40 s ago, a result dated in the future, a
monitor deleted between two of its results, no results at all while its
reminders are due, and evaluators joining and leaving the group while
results stream in.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from tests.support import EventReader, Stack, eventually
from uptimed.check import CheckResult, CheckStatus, ErrorClass
from uptimed.config import Settings
from uptimed.evaluate.evaluator import Evaluator
from uptimed.evaluate.state import MonitorState, evaluate
from uptimed.monitor import Monitor
from uptimed.store.monitor_feed import MonitorFeed, MonitorListener

pytestmark = pytest.mark.kafka


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Feed:
    """Publishes check results to this test's ``checks`` topic."""

    producer: AIOKafkaProducer
    topic: str

    async def send(self, results: Sequence[CheckResult]) -> None:
        futures = [await self.producer.send(self.topic, r.model_dump_json().encode(), key=r.key()) for r in results]
        await asyncio.gather(*futures)


def result(monitor_id: int, ok: bool, at: int, region: str = "default") -> CheckResult:
    if ok:
        return CheckResult(
            monitor_id=monitor_id, region=region, status=CheckStatus.UP, response_time_ms=12.0, checked_at_ms=at
        )
    return CheckResult(
        monitor_id=monitor_id,
        region=region,
        status=CheckStatus.DOWN,
        error_class=ErrorClass.STATUS,
        error="HTTP 500",
        checked_at_ms=at,
    )


@dataclass
class Running:
    """Evaluators started by a test, each a task; a crash is kept, never swallowed.

    Stopped the way the supervisor stops a part: an anyio cancel scope, which
    the evaluator's shielded steps (finishing a batch, leaving the group) honour.
    """

    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    feed: MonitorFeed
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    crashes: list[BaseException] = field(default_factory=list)
    _scopes: dict[asyncio.Task[None], anyio.CancelScope] = field(default_factory=dict)

    def start(self, clock: Callable[[], float] = time.time) -> asyncio.Task[None]:
        evaluator = Evaluator(
            settings=self.settings, pool=self.pool, producer=self.producer, feed=self.feed, clock=clock
        )
        scope = anyio.CancelScope()

        async def run() -> None:
            try:
                with scope:
                    await evaluator.run()
            except Exception as exc:
                self.crashes.append(exc)
                raise

        task = asyncio.create_task(run())
        self._scopes[task] = scope
        self.tasks.append(task)
        return task

    async def stop(self, task: asyncio.Task[None]) -> None:
        self._scopes.pop(task).cancel()
        await asyncio.gather(task, return_exceptions=True)
        self.tasks.remove(task)

    async def stop_all(self) -> None:
        for task in list(self.tasks):
            await self.stop(task)


@pytest.fixture
async def kafka_producer(topics: Stack) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=topics.bootstrap, enable_idempotence=True)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def feed(topics: Stack, kafka_producer: AIOKafkaProducer) -> Feed:
    return Feed(kafka_producer, f"{topics.prefix}.checks")


@pytest.fixture
async def evaluators(topics: Stack, pool: asyncpg.Pool, kafka_producer: AIOKafkaProducer) -> AsyncIterator[Running]:
    """Evaluators of this process; they share its monitor feed, kept current by a listener like the daemon's."""
    feed = MonitorFeed()
    scope = anyio.CancelScope()

    async def listen() -> None:
        with scope:
            await MonitorListener(feed, pool).run()

    listener = asyncio.create_task(listen())
    running = Running(topics.settings(), pool, kafka_producer, feed)
    yield running
    await running.stop_all()
    scope.cancel()
    await listener


@pytest.fixture
async def events(topics: Stack) -> AsyncIterator[EventReader]:
    reader = await EventReader(topics.bootstrap, f"{topics.prefix}.website.events").start()
    yield reader
    await reader.stop()


@pytest.fixture
async def dead_letters(topics: Stack) -> AsyncIterator[EventReader]:
    reader = await EventReader(topics.bootstrap, f"{topics.prefix}.dead-letters").start()
    yield reader
    await reader.stop()


async def make_monitors(pool: asyncpg.Pool, count: int, **columns: Any) -> list[int]:
    """``count`` monitors of one user, straight into the database (1 s, thresholds 1 unless given)."""
    values = {"interval_s": 1, "timeout_s": 0.5, "failure_threshold": 1, "success_threshold": 1, **columns}
    owner = await pool.fetchval(
        "INSERT INTO users (username, email) VALUES ($1, $1 || '@example.com') RETURNING id", f"u{uuid.uuid4().hex[:8]}"
    )
    names = ", ".join(values)
    params = ", ".join(f"${i + 3}" for i in range(len(values)))
    return [
        await pool.fetchval(
            f"INSERT INTO monitors (owner_id, name, target, {names}) VALUES ($1, $2, 'https://m.example/', {params})"
            " RETURNING id",
            owner,
            f"m{i}",
            *values.values(),
        )
        for i in range(count)
    ]


async def test_a_backlog_gets_each_change_its_own_time_and_says_why_it_is_late(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    (mid,) = await make_monitors(pool, 1)
    start = now_ms() - 40_000  # checked 40 s ago, held back while the bus was away: the broker has them only now
    flaps = [True, False, False, True, False, True]
    await feed.send([result(mid, ok, start + i * 1000) for i, ok in enumerate(flaps)])
    evaluators.start()

    changes = await events.wait_for("website.down", count=2)
    ups = await events.wait_for("website.up", count=2)
    assert [e["timestamp"] for e in changes] == [start + 1000, start + 4000]
    assert [e["timestamp"] for e in ups] == [start + 3000, start + 5000]
    assert [e["downtimeSeconds"] for e in ups] == [2.0, 1.0]
    for event in changes + ups:
        assert event["detectedAt"] - event["timestamp"] >= 35_000
        assert event["lateReason"] == "the message bus was unavailable"
    incidents = await pool.fetch("SELECT opened_at, resolved_at FROM incidents WHERE monitor_id = $1 ORDER BY id", mid)
    assert [
        (round(i["opened_at"].timestamp() * 1000), round(i["resolved_at"].timestamp() * 1000)) for i in incidents
    ] == [(start + 1000, start + 3000), (start + 4000, start + 5000)]
    assert not evaluators.crashes


async def test_a_future_dated_result_is_dead_lettered_and_the_monitor_keeps_working(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader, dead_letters: EventReader
) -> None:
    (mid,) = await make_monitors(pool, 1)
    evaluators.start()
    await feed.send([result(mid, True, now_ms() + 3_600_000)])  # a probe host an hour ahead
    [letter] = await dead_letters.wait_records(1)
    reason = dict(letter.headers)["reason"].decode()
    assert reason.startswith("invalid check result: checked_at_ms: 3600 s in the future, beyond max_clock_skew (60 s)")
    assert "\n" not in reason

    await feed.send([result(mid, False, now_ms())])
    [down] = await events.wait_for("website.down")
    assert down["websiteId"] == mid
    assert not evaluators.crashes


async def test_reminders_come_on_time_from_the_timer_when_no_results_arrive(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    (mid,) = await make_monitors(pool, 1, repeat_interval_s=1.5)
    evaluators.start()
    await feed.send([result(mid, False, now_ms())])  # down, then the probes fall silent
    [down] = await events.wait_for("website.down", reminder=False)
    reminders = await events.wait_for("website.down", reminder=True, count=3, timeout=15)
    opened = down["timestamp"]
    for n, reminder in enumerate(reminders, start=1):
        # each within half a second of its due time, one after another
        assert 0 <= reminder["timestamp"] - (opened + n * 1500) < 500 + (n - 1) * 500, (
            n,
            reminder["timestamp"] - opened,
        )
        assert reminder["incidentId"] == down["incidentId"]
    assert len({r["eventId"] for r in reminders}) == 3
    wake = await pool.fetchval("SELECT wake_at FROM monitor_state WHERE monitor_id = $1", mid)
    assert wake is not None and wake.timestamp() * 1000 > reminders[-1]["timestamp"]


async def test_reminders_survive_a_restart_of_the_evaluator(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    (mid,) = await make_monitors(pool, 1, repeat_interval_s=2)
    first = evaluators.start()
    await feed.send([result(mid, False, now_ms())])
    [down] = await events.wait_for("website.down", reminder=False)
    await evaluators.stop(first)
    evaluators.start()  # knows the timer only from PostgreSQL
    [reminder] = await events.wait_for("website.down", reminder=True, timeout=15)
    assert 2000 <= reminder["timestamp"] - down["timestamp"] < 3000
    assert not evaluators.crashes


async def test_a_monitor_deleted_between_its_results_is_dropped_without_a_crash(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    doomed, other = await make_monitors(pool, 2)
    evaluators.start()
    await feed.send([result(doomed, True, now_ms())])
    await eventually(lambda: pool.fetchval("SELECT count(*) FROM checks WHERE monitor_id = $1", doomed))
    # Deleted while the evaluator still has it cached: its next results meet a missing row.
    await pool.execute("DELETE FROM monitors WHERE id = $1", doomed)
    at = now_ms()
    await feed.send([result(doomed, False, at), result(other, False, at)])
    [down] = await events.wait_for("website.down")
    assert down["websiteId"] == other
    assert await pool.fetchval("SELECT count(*) FROM checks WHERE monitor_id = $1", doomed) == 0
    assert not evaluators.crashes


def expected_changes(results: Sequence[CheckResult], monitor: Monitor) -> list[tuple[int, str, int]]:
    """What the state machine makes of a monitor's results, in order: (monitor, kind, at)."""
    state, out = MonitorState(), []
    for r in results:
        outcome = evaluate(state, r, monitor=monitor, regions=["default"])
        state = outcome.state
        out += [(r.monitor_id, c.kind.value, c.at_ms) for c in outcome.changes]
    return out


def flapping(ids: Sequence[int], count: int, start: int, rng: random.Random) -> list[list[CheckResult]]:
    """Per monitor, ``count`` results 20 ms apart that change state now and then."""
    streams = []
    for mid in ids:
        ok, stream = True, []
        for i in range(count):
            if rng.random() < 0.15:
                ok = not ok
            stream.append(result(mid, ok, start + i * 20))
        streams.append(stream)
    return streams


async def test_rebalances_under_load_lose_and_double_nothing(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    rng = random.Random(11)
    ids = await make_monitors(pool, 30)
    monitor = Monitor(
        id=0,
        owner_id=0,
        name="m",
        target="https://m.example/",
        interval=1,
        timeout=0.5,
        failure_threshold=1,
        success_threshold=1,
    )
    streams = flapping(ids, 300, now_ms() - 30_000, rng)
    expected = sorted(c for stream in streams for c in expected_changes(stream, monitor))
    assert len(expected) > 500

    for _ in range(3):
        evaluators.start()
    rebalances = 0
    for step in range(0, 300, 10):
        await feed.send([r for stream in streams for r in stream[step : step + 10]])
        # One evaluator leaves and another joins: two rebalances per round, with results in flight.
        await evaluators.stop(evaluators.tasks[rng.randrange(len(evaluators.tasks))])
        evaluators.start()
        rebalances += 2
    assert rebalances >= 24

    def distinct() -> list[tuple[int, str, int]]:
        seen = {}
        for e in events.events:
            kind = "down" if e["type"] == "website.down" else "up"
            seen[e["eventId"]] = (e["websiteId"], kind, e["timestamp"])
        return sorted(seen.values())

    async def all_arrived() -> bool:
        return len(distinct()) >= len(expected)

    try:
        await eventually(all_arrived, timeout=90)
    except AssertionError:
        got = distinct()
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        stored = await pool.fetchval("SELECT count(*) FROM checks")
        raise AssertionError(
            f"{len(got)} of {len(expected)} transitions; missing {missing[:5]} ({len(missing)}); "
            f"extra {extra[:5]}; {stored} checks stored"
        ) from None
    assert distinct() == expected  # every transition once, with its own time: none lost, none doubled
    # A transition republished after a rebalance keeps its event id, so receivers see it once.
    by_transition: dict[tuple[int, str, int], set[str]] = {}
    for e in events.events:
        kind = "down" if e["type"] == "website.down" else "up"
        by_transition.setdefault((e["websiteId"], kind, e["timestamp"]), set()).add(e["eventId"])
    assert all(len(ids_) == 1 for ids_ in by_transition.values())
    assert not evaluators.crashes


async def test_monitors_created_and_deleted_in_a_loop_do_not_delay_the_others(
    pool: asyncpg.Pool, feed: Feed, evaluators: Running, events: EventReader
) -> None:
    (watched,) = await make_monitors(pool, 1)
    evaluators.start()

    async def latency_of_flips(count: int) -> list[float]:
        delays = []
        ok = True
        for _ in range(count):
            ok = not ok
            kind = "website.up" if ok else "website.down"
            before = len(events.of(kind))
            sent = time.monotonic()
            await feed.send([result(watched, ok, now_ms())])
            await events.wait_for(kind, count=before + 1)
            delays.append(time.monotonic() - sent)
        return delays

    baseline = await latency_of_flips(6)
    stop = asyncio.Event()

    async def churn() -> int:
        rounds = 0
        while not stop.is_set():
            ids = await make_monitors(pool, 5)
            await feed.send([result(mid, False, now_ms()) for mid in ids])
            await pool.execute("DELETE FROM monitors WHERE id = ANY($1::bigint[])", ids)
            rounds += 1
        return rounds

    churning = asyncio.create_task(churn())
    during = await latency_of_flips(6)
    stop.set()
    rounds = await churning
    assert rounds >= 5
    assert not evaluators.crashes
    assert sorted(during)[len(during) // 2] < sorted(baseline)[len(baseline) // 2] + 0.5, (baseline, during)
