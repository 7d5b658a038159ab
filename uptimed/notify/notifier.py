"""The notifier: consumer group on ``website.events`` that records intents, then lets them be delivered.

For each event it writes one PENDING row per integration it is for
(``INSERT ... ON CONFLICT DO NOTHING`` on event id + integration id), in one
transaction per batch, and only then commits the offsets. A redelivered event
finds its rows and adds nothing; delivery is the
:class:`~uptimed.notify.dispatcher.Dispatcher`'s job, from the database.

Whom an event is for: with ``integrationIds`` (a monitor with an escalation
policy: a step's integrations, or everyone a step has reached), those of them
that are the owner's and enabled; without, every enabled integration the
monitor routes to. An ``incident.`` event of a type this version does not
know (a newer uptimed in the cluster added it) is skipped, not dead-lettered.
"""

from __future__ import annotations

import anyio
import asyncpg
import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from uptimed import metrics
from uptimed.bus.dead_letters import dead_letter, invalid
from uptimed.bus.kafka import make_consumer
from uptimed.config import Settings
from uptimed.event import MonitorEvent, unknown_incident_event
from uptimed.notify.dispatcher import Dispatcher
from uptimed.store import integrations, notification_log
from uptimed.store.notification_log import Intent
from uptimed.supervisor import progress

log = structlog.get_logger()

POLL_MS = 1000
"""The longest a poll waits when no event comes: events end it at once, so this only paces an idle loop."""


class Notifier:
    def __init__(
        self, *, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, dispatcher: Dispatcher
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.dispatcher = dispatcher
        self.topics = settings.kafka.topics

    async def run(self) -> None:
        consumer = make_consumer(
            self.settings.kafka, self.topics.events, group_id=self.settings.kafka.notification_group
        )
        try:
            await consumer.start()  # inside the try: a stop during the start still leaves the group
            while True:
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=500)
                progress()
                metrics.observe_consumer_lag(consumer, self.settings.kafka.notification_group, batch)
                if not batch:
                    continue
                added = await self._record(batch)
                try:
                    await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
                except CommitFailedError:
                    log.warning("notifier.commit_failed")  # redelivered later; the intents are already stored
                if added:
                    self.dispatcher.wake()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await consumer.stop()

    async def _record(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> int:
        events: list[MonitorEvent] = []
        for records in batch.values():
            for record in records:
                if unknown_incident_event(record.value):
                    log.debug("notifier.unknown_type", partition=record.partition, offset=record.offset)
                    continue
                try:
                    events.append(MonitorEvent.model_validate_json(record.value or b""))
                except ValidationError as exc:
                    await dead_letter(self.producer, self.topics.dead_letters, record, invalid("event", exc))
        if not events:
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            intents: list[Intent] = []
            routed: dict[tuple[int, int], list[integrations.Integration]] = {}
            for event in events:
                if event.integrationIds is not None:
                    chosen = await integrations.chosen(conn, event.userId, event.integrationIds)
                    intents += [Intent(event, integration.id) for integration in chosen]
                    continue
                key = (event.userId, event.websiteId)
                if key not in routed:
                    routed[key] = await integrations.for_event(conn, event.userId, event.websiteId)
                intents += [Intent(event, integration.id) for integration in routed[key]]
            added = await notification_log.add_intents(conn, intents)
        log.info("notifier.recorded", events=len(events), intents=len(intents), added=added)
        return added
