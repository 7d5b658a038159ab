"""The evaluator: a consumer group on ``checks`` that turns results into events.

Per batch of records: parse (unparseable or future-dated ones are
dead-lettered), fold each result into its monitor's state in check-time order
(``state.evaluate``), then in one PostgreSQL transaction write the checks,
the states, the incidents and the events to the outbox; then publish the
events to ``website.events``, and only then commit the offsets. A crash
anywhere replays harmlessly: stored checks and already-seen results are
skipped, event ids are derived from what made them, and events committed to
the outbox but not published are published by whoever owns the monitor next.

Timers (reminders, escalation steps) belong to whoever owns the monitor's
partition of ``checks``: each stored state carries the time it next needs
waking (``state.next_wake_ms``), this process keeps the wake times of the
monitors of its partitions in memory (read from PostgreSQL when partitions
are assigned) and fires them from the same loop that evaluates results, so a
timer and a result of one monitor never race, and a rebalance never finds a
batch half done: the rebalance listener waits for the batch in hand.

Acknowledgements come from people, through the API and the pages, into the
``incidents`` table. Before firing a monitor's timers this process reads its
open incident's acknowledgement there, so no step or reminder goes out after
an acknowledgement is stored; and every :data:`ACK_POLL_S` it asks which
incidents were acknowledged (or no longer are) since their evaluator acted,
and wakes those of its monitors at once, to tell everyone notified.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import anyio.lowlevel
import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from uptimed import metrics
from uptimed.bus.dead_letters import dead_letter, invalid
from uptimed.bus.kafka import make_consumer, partition_of
from uptimed.check import CheckResult
from uptimed.config import Settings
from uptimed.evaluate import maintenance
from uptimed.evaluate.escalation import Acknowledgement, Policy, Step, ack_via
from uptimed.evaluate.events import LATE_AFTER_MS, event_for
from uptimed.evaluate.state import (
    Evaluation,
    MonitorState,
    MonitorStatus,
    StateChange,
    acknowledge,
    attach_incident_id,
    evaluate,
    next_wake_ms,
    silence_ms_for,
    tick,
)
from uptimed.event import MonitorEvent
from uptimed.failpoints import failpoint
from uptimed.monitor import PUSH_REGION, Monitor
from uptimed.store import (
    Connection,
    checks,
    escalation_policies,
    event_outbox,
    incidents,
    monitor_state,
    monitors,
    regions,
)
from uptimed.store.escalation_policies import StoredPolicy
from uptimed.store.monitor_feed import MonitorFeed
from uptimed.store.statements import execute_together
from uptimed.supervisor import progress

log = structlog.get_logger()

POLICY_CACHE_S = 5.0
"""How long an escalation policy is reused before it is read again (edits to a policy apply within this;
a monitor switched to another policy arrives through the feed at once)."""
BATCH_DEADLINE_S = 8.0
"""A batch in progress is finished on stop if it can be within this; normal batches take milliseconds."""
TIMER_POLL_S = 0.5
"""The longest the loop waits for results before looking at due timers again."""
PUBLISH_RETRY_S = (0.5, 5.0)
"""Backoff between attempts to publish events while the broker is away (first, most)."""
PUBLISH_TIMEOUT_S = 5.0
"""One attempt at publishing; within the batch deadline, so a slow broker never fails a batch."""
LOG_APPEND_TIME = 1
"""A record's ``timestamp_type`` when the broker stamped it on arrival."""
DELETED_RETRIES = 3
"""Attempts at storing a batch whose monitors are being deleted meanwhile."""
ACK_POLL_S = 1.0
"""How often this process asks which incidents were acknowledged since their evaluator acted (an indexed,
almost always empty read)."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types: its base is Any
    """Partitions move only between batches; what this process knew of them is dropped."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Waits for the batch in hand: it finishes (and commits) under the old assignment.
        async with self.evaluator.batch_lock:
            self.evaluator.forget()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        async with self.evaluator.batch_lock:
            self.evaluator.forget()
            self.evaluator.owned = {tp.partition for tp in assigned}
        log.info("evaluator.assigned", partitions=sorted(tp.partition for tp in assigned))


@dataclass
class _Input:
    """One result to evaluate and how long it waited for the bus after its check (when known)."""

    result: CheckResult
    bus_wait_ms: int = 0


@dataclass
class _Timers:
    """Wake times of the monitors this process owns: a heap with lazy deletion."""

    wake: dict[int, int] = field(default_factory=dict)
    heap: list[tuple[int, int]] = field(default_factory=list)
    loaded: bool = False

    def set(self, monitor_id: int, wake_ms: int | None) -> None:
        if wake_ms is None:
            self.wake.pop(monitor_id, None)
        elif self.wake.get(monitor_id) != wake_ms:
            self.wake[monitor_id] = wake_ms
            heapq.heappush(self.heap, (wake_ms, monitor_id))

    def next_ms(self) -> int | None:
        while self.heap and self.wake.get(self.heap[0][1]) != self.heap[0][0]:
            heapq.heappop(self.heap)
        return self.heap[0][0] if self.heap else None

    def wake_now(self, monitor_id: int, now_ms: int) -> None:
        """Wake this monitor at ``now_ms`` or earlier; its later wake time is worked out again when it fires."""
        wake = self.wake.get(monitor_id)
        if wake is None or wake > now_ms:
            self.set(monitor_id, now_ms)

    def due(self, now_ms: int) -> list[int]:
        found = []
        while (at := self.next_ms()) is not None and at <= now_ms:
            _, monitor_id = heapq.heappop(self.heap)
            self.wake.pop(monitor_id, None)
            found.append(monitor_id)
        return found

    def clear(self) -> None:
        self.wake.clear()
        self.heap.clear()
        self.loaded = False


class Evaluator:
    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        feed: MonitorFeed,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.feed = feed
        self.pool = pool
        self.producer = producer
        self.clock = clock
        self.topics = settings.kafka.topics
        self.regions = settings.probe.all_regions
        self.silence_intervals = settings.evaluate.region_silence
        self.max_skew_ms = round(settings.evaluate.max_clock_skew * 1000)
        self.states: dict[int, MonitorState] = {}
        self.owned: set[int] = set()
        """Partitions of ``checks`` assigned to this process."""
        self.batch_lock = asyncio.Lock()
        self._policies: dict[int, tuple[float, Policy | None]] = {}
        self._timers = _Timers()
        self._windows = maintenance.Windows(pool, clock=clock)
        self._ack_pending: dict[int, int] = {}
        """Monitors (to their incident) whose acknowledgement changed since their evaluator acted: wake them."""
        self._ack_polled = 0.0
        self._edits = feed.subscribe()
        """Monitors edited since the last look: a due time of theirs may have moved (see :meth:`_rearm_edited`)."""
        self._unpublished: list[MonitorEvent] = []
        self._publish_after = 0.0
        self._publish_failures = 0
        self._partitions = 0
        self._silent: Counter[str] = Counter()
        """Per region, how many of the owned monitors it is silent for."""

    def forget(self) -> None:
        """Drop what this process knew of its partitions (called around a rebalance)."""
        self.states.clear()
        self._timers.clear()
        self._ack_pending.clear()
        self._unpublished.clear()
        self._silent.clear()
        metrics.observe_silent_regions(self._silent)
        self.owned = set()

    async def run(self) -> None:
        consumer = make_consumer(self.settings.kafka, group_id=self.settings.kafka.evaluator_group)
        consumer.subscribe([self.topics.checks], listener=_Rebalance(self))
        try:
            await consumer.start()  # inside the try: a stop during the start still leaves the group
            while True:
                batch = await consumer.getmany(timeout_ms=self._poll_timeout_ms(), max_records=2000)
                progress()  # readiness: this consumer polls (uptimed.supervisor)
                metrics.observe_consumer_lag(consumer, self.settings.kafka.evaluator_group, batch)
                async with self.batch_lock:
                    batch = {tp: records for tp, records in batch.items() if tp.partition in self.owned}
                    if batch:
                        await self._finish(consumer, batch)
                    if not self._timers.loaded and self.owned:
                        await self._load_owned(consumer)
                    await self._refresh_windows()
                    await self._poll_acknowledgements()
                    self._rearm_edited()
                    await self._fire_timers()
                    await self._publish_pending()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await consumer.stop()

    def _poll_timeout_ms(self) -> int:
        wait_s = TIMER_POLL_S
        next_wake = self._timers.next_ms()
        if next_wake is not None:
            wait_s = min(wait_s, max(0.0, next_wake / 1000 - self.clock()))
        if self._unpublished:
            wait_s = min(wait_s, max(0.0, self._publish_after - time.monotonic()))
        return max(1, round(wait_s * 1000))

    async def _finish(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Evaluate, store, publish and commit one batch, all of it even when the daemon is stopping.

        Stopping between publishing and marking the outbox would publish the
        same events again at the next start: harmless (same ids), but noise on
        the topic a graceful stop should not make. Past the deadline (a stuck
        database or broker) the part fails and the batch is redelivered.
        """
        with anyio.CancelScope(shield=True, deadline=anyio.current_time() + BATCH_DEADLINE_S) as scope:
            inputs = await self._parse(batch)
            if inputs:
                await self._apply(inputs, [])
                await self._publish_pending()
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # The group moved on; the batch will be redelivered and replays harmlessly.
                log.warning("evaluator.commit_failed", error=type(exc).__name__)
            except KafkaError as exc:
                log.warning("evaluator.commit_failed", error=type(exc).__name__)
        if scope.cancelled_caught:
            raise TimeoutError(f"a batch of check results took over {BATCH_DEADLINE_S:g} s; it will be redelivered")

    async def _parse(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> list[_Input]:
        inputs: list[_Input] = []
        now_ms = int(self.clock() * 1000)
        for records in batch.values():
            for record in records:
                try:
                    result = CheckResult.model_validate_json(record.value or b"")
                except ValidationError as exc:
                    await dead_letter(self.producer, self.topics.dead_letters, record, invalid("check result", exc))
                    continue
                ahead_ms = result.checked_at_ms - now_ms
                if ahead_ms > self.max_skew_ms:
                    reason = (
                        f"invalid check result: checked_at_ms: {ahead_ms / 1000:.0f} s in the future, "
                        f"beyond max_clock_skew ({self.max_skew_ms / 1000:g} s); is the probe host's clock ahead?"
                    )
                    await dead_letter(self.producer, self.topics.dead_letters, record, reason)
                    continue
                inputs.append(_Input(result, _bus_wait_ms(record, result)))
        # One monitor's results in check-time order, whatever region or batch they came from.
        inputs.sort(key=lambda i: (i.result.monitor_id, i.result.checked_at_ms))
        return inputs

    async def _apply(self, inputs: Sequence[_Input], timers: Sequence[int]) -> None:
        """Evaluate results and due timers; store everything they change in one transaction.

        States are evaluated into a copy and only become this process's once
        stored. A monitor deleted meanwhile makes the transaction fail on its
        foreign key: it is then read again (gone) and the batch retried without it.
        """
        ids = {i.result.monitor_id for i in inputs} | set(timers)
        await self._refresh_windows()
        for attempt in range(1, DELETED_RETRIES + 1):
            known = await self._load_monitors(ids, fresh=attempt > 1)
            policies = await self._load_policies(known.values())
            states = await self._states(known)
            try:
                await self._store(inputs, timers, known, states, policies)
                return
            except asyncpg.ForeignKeyViolationError:
                if attempt == DELETED_RETRIES:
                    raise
                log.info("evaluator.monitor_deleted_meanwhile", attempt=attempt)

    async def _states(self, known: dict[int, Monitor]) -> dict[int, MonitorState]:
        missing = {mid for mid in known if mid not in self.states}
        states = {mid: self.states[mid] for mid in known if mid in self.states}
        if missing:
            for mid, data in (await monitor_state.load_many(self.pool, missing)).items():
                try:
                    states[mid] = MonitorState.from_json(data)
                except (TypeError, ValueError):
                    log.warning("evaluator.state_unreadable", monitor_id=mid)
        return states

    async def _store(
        self,
        inputs: Sequence[_Input],
        timers: Sequence[int],
        known: dict[int, Monitor],
        states: dict[int, MonitorState],
        policies: dict[int, Policy],
    ) -> None:
        now_ms = int(self.clock() * 1000)
        stored: list[CheckResult] = []
        in_maintenance: list[bool] = []
        pending: list[tuple[Monitor, StateChange, str | None]] = []
        touched: set[int] = set()
        applied: dict[int, int | None] = {}
        """Per incident, the acknowledgement (its time, or None) this batch acted on."""
        rearm: dict[int, int | None] = {}
        newest: dict[str, int] = {}
        # Counted against what this process has counted so far: a state loaded after a
        # rebalance that is already silent for a region counts as newly silent here.
        silent_before = {mid: self.states[mid].silent for mid in known if mid in self.states}

        def take(monitor: Monitor, outcome: Evaluation, late_reason: str | None) -> None:
            if outcome.accepted:
                states[monitor.id] = outcome.state
                touched.add(monitor.id)
                pending.extend((monitor, change, late_reason) for change in outcome.changes)

        for n, item in enumerate(inputs):
            if n % 250 == 249:
                await (
                    anyio.lowlevel.checkpoint()
                )  # a batch of 2,000 is ~25 ms of CPU: let /readyz and the API answer meanwhile
            result = item.result
            monitor = known.get(result.monitor_id)
            if monitor is None:
                continue  # deleted since it was checked
            window_end = self._windows.end_of(monitor, result.checked_at_ms)
            stored.append(result)
            in_maintenance.append(window_end is not None)
            if result.region != PUSH_REGION:  # pings say nothing of a region's probes
                newest[result.region] = max(newest.get(result.region, 0), result.checked_at_ms)
            if not monitor.enabled:
                continue
            before = states.get(monitor.id, MonitorState())
            if before.hold is not None:
                # What the windows say now (they may have changed since the hold began), this result's time if none is on.
                now_end = self._windows.end_of(monitor, max(now_ms, result.checked_at_ms))
                end = now_end if now_end is not None else window_end
                before = maintenance.retarget(before, end_ms=end, at_ms=result.checked_at_ms)
            outcome = evaluate(
                before,
                result,
                monitor=monitor,
                regions=monitor.effective_regions(self.regions),
                silence_ms=silence_ms_for(monitor, self.silence_intervals),
                policy=policies.get(monitor.id),
            )
            if window_end is not None:
                outcome = maintenance.hold_back(before, outcome, until_ms=window_end)
            take(monitor, outcome, _late_reason(item, now_ms))
        acks = await self._acknowledgements(timers, states)
        for mid in timers:
            if (pending_incident := self._ack_pending.pop(mid, None)) is not None and pending_incident in acks:
                # Looked at now, whatever follows: a paused monitor's timers read it again when it resumes.
                ack = acks[pending_incident]
                applied[pending_incident] = ack.at_ms if ack else None
            monitor = known.get(mid)
            if monitor is None or not monitor.enabled or mid not in states:
                continue
            regions_of = monitor.effective_regions(self.regions)
            incident = states[mid].incident
            if incident is not None and incident.id in acks:
                ack = acks[incident.id]
                acked = acknowledge(states[mid], _acknowledgement(ack), regions=regions_of, now_ms=now_ms)
                take(monitor, acked, None)
                if acked.accepted:
                    applied[incident.id] = ack.at_ms if ack else None
            window_end = self._windows.end_of(monitor, now_ms)
            before = maintenance.retarget(states[mid], end_ms=window_end, at_ms=now_ms)
            outcome = tick(before, monitor=monitor, regions=regions_of, now_ms=now_ms, policy=policies.get(mid))
            if window_end is not None:
                outcome = maintenance.hold_back(before, outcome, until_ms=window_end)
            if not outcome.accepted and before is not states[mid]:
                outcome = Evaluation(before)  # nothing due, but the hold moved: stored with its new wake
            stored.extend(outcome.made)
            in_maintenance.extend(window_end is not None for _ in outcome.made)
            take(monitor, outcome, None)
            if not outcome.accepted:  # not due after all (the monitor was edited, the windows changed): wake when it is
                rearm[mid] = next_wake_ms(before, monitor)

        events: list[MonitorEvent] = []
        # A quiet batch (no change to record) is one statement, atomic on its own: one round trip.
        async with self.pool.acquire() as conn, conn.transaction() if pending or applied else contextlib.nullcontext():
            for monitor, change, late_reason in pending:
                event = await self._record(conn, states, monitor, change, now_ms, late_reason)
                if event is not None:
                    events.append(event)
            wakes = {mid: next_wake_ms(states[mid], known[mid]) for mid in touched}
            await event_outbox.add_many(conn, events)
            await incidents.ack_applied(conn, applied)
            await execute_together(
                conn,
                [
                    checks.insert_statement(stored, in_maintenance),
                    monitor_state.save_statement({mid: states[mid].to_json() for mid in touched}, wakes),
                    monitor_state.wakes_statement({mid: w for mid, w in rearm.items() if mid not in touched}),
                    regions.seen_statement(newest),
                ],
            )
        self.states.update({mid: states[mid] for mid in touched})
        for mid, wake in {**rearm, **wakes}.items():
            self._timers.set(mid, wake)
        for mid in set(timers) - touched:
            # Woken early (an acknowledgement to look at) with nothing due: its own time again.
            if (monitor := known.get(mid)) is not None and monitor.enabled and mid in states:
                wake = next_wake_ms(states[mid], monitor)
                if wake is not None and wake > now_ms:
                    self._timers.set(mid, wake)
        self._unpublished.extend(events)
        self._note_silence(silent_before, {mid: states[mid].silent for mid in touched})
        metrics.observe_region_results(newest)

    async def _record(
        self,
        conn: Connection,
        states: dict[int, MonitorState],
        monitor: Monitor,
        change: StateChange,
        now_ms: int,
        late_reason: str | None,
    ) -> MonitorEvent | None:
        """Open or resolve the incident of a change, and build its event (None: held by a maintenance window)."""
        incident_id = change.incident_id
        if change.opens_incident:
            incident_id = await incidents.open_incident(
                conn, monitor.id, opened_at_ms=change.incident_opened_at_ms or change.at_ms, cause=change.reason
            )
            states[monitor.id] = attach_incident_id(
                states[monitor.id], incident_id, opened_at_ms=change.incident_opened_at_ms
            )
        elif change.resolves_incident:
            incident_id = await incidents.resolve_incident(conn, monitor.id, resolved_at_ms=change.at_ms) or incident_id
        event = event_for(change, monitor, now_ms, incident_id, late_reason=late_reason)
        if change.held:
            log.info(
                "monitor.changed",
                monitor_id=monitor.id,
                type=event.type.value,
                reminder=event.reminder,
                held="maintenance",
                reason=event.reason,
                at_ms=event.timestamp,
            )
            return None
        if change.step is not None and incident_id is not None:
            step = change.step
            await incidents.add_event(
                conn,
                incident_id,
                at=datetime.fromtimestamp(change.at_ms / 1000, UTC),
                kind="escalated",
                event_id=event.eventId,
                detail={
                    "step": step.number,
                    "of": step.of,
                    "name": step.name,
                    "repeat": step.repeat,
                    "after_s": step.after_ms / 1000,
                    "policy": step.policy_name,
                    "integrations": list(step.integration_ids),
                },
            )
        log.info(
            "monitor.changed",
            monitor_id=monitor.id,
            type=event.type.value,
            reminder=event.reminder,
            event_id=str(event.eventId),
            reason=event.reason,
            at_ms=event.timestamp,
            late_s=event.late_by_s,
            late_reason=event.lateReason,
        )
        return event

    def _note_silence(self, before: dict[int, tuple[str, ...]], after: dict[int, tuple[str, ...]]) -> None:
        """Log a region that stops (or starts again) reporting, once, not once per monitor."""
        for mid, now_silent in after.items():
            was = set(before.get(mid, ()))
            for region in set(now_silent) - was:
                self._silent[region] += 1
                if self._silent[region] == 1:
                    log.warning("region.silent", region=region, first_monitor_id=mid)
            for region in was - set(now_silent):
                self._silent[region] -= 1
                if self._silent[region] <= 0:
                    del self._silent[region]
                    log.info("region.reporting", region=region)
        metrics.observe_silent_regions(self._silent)

    async def _refresh_windows(self) -> None:
        """Read the maintenance windows again when due; if they changed, wake the monitors they hold.

        A window deleted or cut short must not keep a monitor silent until the
        end it had: the timer path moves each hold to what the windows say now
        (:func:`uptimed.evaluate.maintenance.retarget`).
        """
        if not await self._windows.refresh():
            return
        now_ms = int(self.clock() * 1000)
        for mid, state in self.states.items():
            if state.hold is not None and now_ms < state.hold.until_ms:
                self._timers.set(mid, now_ms)

    def _rearm_edited(self) -> None:
        """Wake at once for edited monitors that have a timer: :func:`tick` then finds whether the edit made
        something due (a heartbeat's shorter period, a shorter repeat interval) or sets the timer to the new time.

        Only monitors with a timer: an edit cannot make anything due for the others, and a start (every
        monitor "changed") must not read every state.
        """
        edited = self._edits.take()
        if not self._timers.loaded:
            return
        now_ms = int(self.clock() * 1000)
        for mid in edited:
            if mid in self._timers.wake:
                self._timers.set(mid, now_ms)

    async def _fire_timers(self) -> None:
        due = self._timers.due(int(self.clock() * 1000))
        if due:
            with anyio.CancelScope(shield=True, deadline=anyio.current_time() + BATCH_DEADLINE_S):
                await self._apply([], due)

    async def _acknowledgements(
        self, timers: Sequence[int], states: dict[int, MonitorState]
    ) -> dict[int, incidents.Ack | None]:
        """The acknowledgement of the open incident of each DOWN monitor among ``timers``, as stored now."""
        wanted = {
            state.incident.id
            for mid in timers
            if (state := states.get(mid)) is not None
            and state.status is MonitorStatus.DOWN
            and state.incident is not None
            and state.incident.id is not None
        }
        wanted |= {incident for mid, incident in self._ack_pending.items() if mid in timers}
        return await incidents.acknowledgements(self.pool, wanted) if wanted else {}

    async def _poll_acknowledgements(self) -> None:
        """Wake, at once, the monitors of ours whose incident was acknowledged since their evaluator acted."""
        if not self._timers.loaded or time.monotonic() - self._ack_polled < ACK_POLL_S:
            return
        self._ack_polled = time.monotonic()
        try:
            with anyio.fail_after(ACK_POLL_S):
                pending = await incidents.pending_acknowledgements(self.pool)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # PostgreSQL away: the next poll asks again; this alone is no reason to stop evaluating.
            log.debug("evaluator.ack_poll_failed", error=type(exc).__name__)
            return
        now_ms = int(self.clock() * 1000)
        for mid, incident_id in pending.items():
            if self._owns(mid):
                self._ack_pending[mid] = incident_id
                self._timers.wake_now(mid, now_ms)

    async def _load_owned(self, consumer: AIOKafkaConsumer) -> None:
        """After an assignment: the wake times and unpublished events of the monitors of our partitions."""
        self._partitions = len(consumer.partitions_for_topic(self.topics.checks) or ())
        if not self._partitions:
            return
        wakes = await monitor_state.wake_times(self.pool)
        for mid, wake in wakes.items():
            if self._owns(mid):
                self._timers.set(mid, wake)
        # A region this process never heard from (its monitors were another process's until now)
        # still has an age: the newest result any process stored from it.
        seen = await regions.last_results(self.pool)
        metrics.observe_region_results({region: int(at.timestamp() * 1000) for region, at in seen.items()})
        payloads = await event_outbox.unpublished(self.pool, older_than_s=0)
        backlog = [MonitorEvent.model_validate(p) for p in payloads]
        self._unpublished[:0] = [e for e in backlog if self._owns(e.websiteId)]
        self._timers.loaded = True
        if self._unpublished:
            log.info("evaluator.outbox_republish", events=len(self._unpublished))

    def _owns(self, monitor_id: int) -> bool:
        return partition_of(monitor_id, self._partitions) in self.owned

    async def _publish_pending(self) -> None:
        """Publish stored events in the order they were made; on failure keep them and retry later."""
        if not self._unpublished or time.monotonic() < self._publish_after:
            return
        events = list(self._unpublished)
        try:
            with anyio.fail_after(PUBLISH_TIMEOUT_S):
                futures = [
                    await self.producer.send(self.topics.events, event.model_dump_json().encode(), key=event.key())
                    for event in events
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            self._publish_failures += 1
            delay = min(PUBLISH_RETRY_S[0] * 2 ** (self._publish_failures - 1), PUBLISH_RETRY_S[1])
            self._publish_after = time.monotonic() + delay
            if self._publish_failures == 1:
                log.warning("evaluator.publish_delayed", events=len(events), error=type(exc).__name__)
            return
        if self._publish_failures:
            log.info("evaluator.publish_resumed", events=len(events), attempts=self._publish_failures + 1)
        self._publish_failures = 0
        del self._unpublished[: len(events)]
        metrics.observe_events(events)
        await failpoint("evaluate.before_mark_published")
        await event_outbox.mark_published(self.pool, [e.eventId for e in events])

    async def _load_policies(self, monitors_: Iterable[Monitor]) -> dict[int, Policy]:
        """The escalation policy of each of these monitors that has one (cached like the monitors)."""
        now = time.monotonic()
        wanted = {m.escalation_policy_id for m in monitors_ if m.escalation_policy_id is not None}
        stale = {pid for pid in wanted if pid not in self._policies or now - self._policies[pid][0] > POLICY_CACHE_S}
        if stale:
            found = await escalation_policies.get_many(self.pool, stale)
            for pid in stale:
                self._policies[pid] = (now, _policy(found[pid]) if pid in found else None)
        out: dict[int, Policy] = {}
        for monitor in monitors_:
            if monitor.escalation_policy_id is not None:
                policy = self._policies[monitor.escalation_policy_id][1]
                if policy is not None:
                    out[monitor.id] = policy
        return out

    async def _load_monitors(self, ids: Iterable[int], *, fresh: bool = False) -> dict[int, Monitor]:
        """The monitors of ``ids`` from this process's feed; ``fresh`` reads them from PostgreSQL (a retry
        after a monitor was deleted faster than its notification arrived)."""
        ids = set(ids)
        if not self.feed.ready.is_set():
            await self.feed.ready.wait()
        known = {} if fresh else self.feed.monitors(ids)
        if unknown := ids - set(known):
            # Created a moment ago (its notification is on the way) or deleted: PostgreSQL says which.
            known.update(await monitors.get_many(self.pool, unknown))
        for mid in ids - set(known):  # deleted: forget what this process knew of it
            self.states.pop(mid, None)
            self._timers.set(mid, None)
        return known


def _policy(stored: StoredPolicy) -> Policy:
    """A stored policy as the state machine copies it into an incident."""
    repeat = stored.repeat_every_s
    return Policy(
        id=stored.id,
        name=stored.name,
        steps=tuple(Step(round(s.after_s * 1000), s.integration_ids, s.name) for s in stored.steps),
        repeat_ms=round(repeat * 1000) if repeat is not None else None,
    )


def _acknowledgement(ack: incidents.Ack | None) -> Acknowledgement | None:
    if ack is None:
        return None
    return Acknowledgement(at_ms=ack.at_ms, by=ack.by, via=ack_via(ack.via))


def _late_reason(item: _Input, now_ms: int) -> str | None:
    """Why a change made by this result is late, when the bus is the main reason (else the default)."""
    delay_ms = now_ms - item.result.checked_at_ms
    if delay_ms > LATE_AFTER_MS and item.bus_wait_ms * 2 >= delay_ms:
        return "the message bus was unavailable"
    return None


def _bus_wait_ms(record: ConsumerRecord, result: CheckResult) -> int:
    """From the end of the check to the broker's append (``checks`` keeps LogAppendTime; else unknown: 0)."""
    if record.timestamp_type != LOG_APPEND_TIME:
        return 0
    finished_ms = result.checked_at_ms + (result.response_time_ms or 0)
    return max(0, int(record.timestamp - finished_ms))
