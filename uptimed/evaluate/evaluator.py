"""The evaluator: a consumer group on ``checks`` that turns results into events.

Per batch of records: parse (unparseable ones are dead-lettered), fold each
result into its monitor's state (``state.evaluate``), then in one PostgreSQL
transaction write the checks, the states, the incidents and the events to the
outbox; then publish the events to ``website.events``, and only then commit
the offsets. A crash anywhere replays harmlessly: stored checks and
already-seen results are skipped, and events committed to the outbox but not
published are published at the next start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from uptimed import metrics
from uptimed.bus.dead_letters import dead_letter
from uptimed.bus.kafka import make_consumer
from uptimed.bus.messages import CheckResult, MonitorEvent
from uptimed.config import Settings
from uptimed.evaluate.events import event_for
from uptimed.evaluate.state import MonitorState, StateChange, attach_incident_id, evaluate
from uptimed.failpoints import failpoint
from uptimed.monitor import Monitor
from uptimed.store import checks, event_outbox, incidents, monitor_state, monitors

log = structlog.get_logger()

MONITOR_CACHE_S = 5.0
"""How long a monitor's definition is reused before it is read again (edits apply within this)."""
BATCH_DEADLINE_S = 8.0
"""A batch in progress is finished on stop if it can be within this; normal batches take milliseconds."""


class _ForgetOnRebalance(ConsumerRebalanceListener):
    """States are reloaded from PostgreSQL after any rebalance: another process may have moved them on."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.evaluator.states.clear()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.evaluator.states.clear()
        log.info("evaluator.assigned", partitions=sorted(tp.partition for tp in assigned))


@dataclass
class _Pending:
    monitor: Monitor
    change: StateChange


class Evaluator:
    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.clock = clock
        self.topics = settings.kafka.topics
        self.regions = settings.probe.all_regions
        self.states: dict[int, MonitorState] = {}
        self._monitors: dict[int, tuple[float, Monitor]] = {}
        self.events_published = 0

    async def run(self) -> None:
        consumer = make_consumer(self.settings.kafka, group_id=self.settings.kafka.evaluator_group)
        consumer.subscribe([self.topics.checks], listener=_ForgetOnRebalance(self))
        await consumer.start()
        try:
            await self._publish_outbox(older_than_s=0)
            last_sweep = time.monotonic()
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                metrics.observe_consumer_lag(consumer, self.settings.kafka.evaluator_group, batch)
                if batch:
                    await self._finish(consumer, batch)
                if time.monotonic() - last_sweep > 30:
                    await self._publish_outbox(older_than_s=30)
                    last_sweep = time.monotonic()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await consumer.stop()

    async def _finish(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Evaluate, store, publish and commit one batch, all of it even when the daemon is stopping.

        Stopping between publishing and marking the outbox would publish the
        same events again at the next start: harmless (same ids), but noise on
        the topic a graceful stop should not make. Past the deadline (a stuck
        database or broker) the part fails and the batch is redelivered.
        """
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + BATCH_DEADLINE_S) as scope:
            await self._process(batch)
            try:
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
            except CommitFailedError:
                # The group moved on; the batch will be redelivered and replays harmlessly.
                log.warning("evaluator.commit_failed")
        if scope.cancelled_caught:
            raise TimeoutError(f"a batch of check results took over {BATCH_DEADLINE_S:g} s; it will be redelivered")

    async def _process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        results: list[CheckResult] = []
        for records in batch.values():
            for record in records:
                try:
                    results.append(CheckResult.model_validate_json(record.value or b""))
                except ValidationError as exc:
                    await dead_letter(self.producer, self.topics.dead_letters, record, f"invalid check result: {exc}")
        if not results:
            return
        try:
            events = await self._evaluate(results)
        except BaseException:
            self.states.clear()  # the cached states may be ahead of what was stored
            raise
        await self._publish(events)

    async def _evaluate(self, results: Sequence[CheckResult]) -> list[MonitorEvent]:
        known = await self._load_monitors({r.monitor_id for r in results})
        missing_state = {mid for mid in known if mid not in self.states}
        if missing_state:
            for mid, data in (await monitor_state.load_many(self.pool, missing_state)).items():
                self.states[mid] = MonitorState.from_json(data)
        now_ms = int(self.clock() * 1000)
        stored: list[CheckResult] = []
        pending: list[_Pending] = []
        touched: set[int] = set()
        for result in results:
            monitor = known.get(result.monitor_id)
            if monitor is None:
                continue  # deleted since it was checked
            stored.append(result)
            if not monitor.enabled:
                continue
            outcome = evaluate(
                self.states.get(monitor.id, MonitorState()),
                result,
                monitor=monitor,
                regions=monitor.effective_regions(self.regions),
                now_ms=now_ms,
            )
            if outcome.accepted:
                self.states[monitor.id] = outcome.state
                touched.add(monitor.id)
                pending.extend(_Pending(monitor, change) for change in outcome.changes)

        events: list[MonitorEvent] = []
        async with self.pool.acquire() as conn, conn.transaction():
            await checks.insert_many(conn, stored)
            for item in pending:
                events.append(await self._record(conn, item))
            await monitor_state.save_many(conn, {mid: self.states[mid].to_json() for mid in touched})
            await event_outbox.add_many(conn, events)
        return events

    async def _record(self, conn: asyncpg.Connection, item: _Pending) -> MonitorEvent:
        """Open or resolve the incident of a change, and build its event."""
        monitor, change = item.monitor, item.change
        incident_id = change.incident_id
        if change.opens_incident:
            incident_id = await incidents.open_incident(
                conn, monitor.id, opened_at_ms=change.incident_opened_at_ms or change.at_ms, cause=change.reason
            )
            self.states[monitor.id] = attach_incident_id(
                self.states[monitor.id], incident_id, opened_at_ms=change.incident_opened_at_ms
            )
        elif change.resolves_incident:
            incident_id = await incidents.resolve_incident(conn, monitor.id, resolved_at_ms=change.at_ms) or incident_id
        event = event_for(change, monitor, change.at_ms, incident_id)
        log.info(
            "monitor.changed", monitor_id=monitor.id, type=event.type.value, reminder=event.reminder,
            event_id=str(event.eventId), reason=event.reason,
        )
        return event

    async def _publish(self, events: Sequence[MonitorEvent]) -> None:
        if not events:
            return
        futures = [
            await self.producer.send(self.topics.events, event.model_dump_json().encode(), key=event.key())
            for event in events
        ]
        await asyncio.gather(*futures)
        metrics.observe_events(events)
        await failpoint("evaluate.before_mark_published")
        await event_outbox.mark_published(self.pool, [e.eventId for e in events])
        self.events_published += len(events)

    async def _publish_outbox(self, *, older_than_s: float) -> None:
        """Publish events a crash left in the outbox (their ids let the notifier drop duplicates)."""
        payloads = await event_outbox.unpublished(self.pool, older_than_s=older_than_s)
        if payloads:
            log.info("evaluator.outbox_republish", events=len(payloads))
            await self._publish([MonitorEvent.model_validate(p) for p in payloads])

    async def _load_monitors(self, ids: set[int]) -> dict[int, Monitor]:
        now = time.monotonic()
        stale = {mid for mid in ids if mid not in self._monitors or now - self._monitors[mid][0] > MONITOR_CACHE_S}
        if stale:
            fresh = await monitors.get_many(self.pool, stale)
            for mid in stale:
                if mid in fresh:
                    self._monitors[mid] = (now, fresh[mid])
                else:
                    self._monitors.pop(mid, None)
        return {mid: self._monitors[mid][1] for mid in ids if mid in self._monitors}
