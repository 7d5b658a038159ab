"""Delivers due rows of ``notification_log``, each on its own, with retries.

Rows are claimed with a lease (several processes share the work; a crashed
one's rows come due again). The lease is one attempt's timeout plus
:data:`LEASE_MARGIN_S`, renewed every :data:`RENEW_EVERY_S` while this process
holds the row, so a row whose process died comes due again within about
``delivery_timeout`` + 4 s. Each attempt is on record before its request
leaves; a retry after a crash carries the same event id and the next attempt
number (``Notification.attempt``), and the log shows the first one's outcome
as unknown.

With ``[api] public_url`` set, each notification carries links to its
monitor's page and its incident's, and alerts of an open incident (down,
reminder, escalation) a signed link that acknowledges it
(:mod:`uptimed.links`), made for the integration it goes to.

Every delivery runs in its own task under a cap per channel type and a rate
limit per destination, so one slow or failing destination never holds back
another; and at most ``deliveries_per_user`` of one user's integrations are
in flight at once (the rest are given back, due in :data:`USER_BUSY_RETRY_S`),
so one user's many slow destinations cannot take every slot of a channel type.
Outcomes: SENT; RETRYING with the next attempt after an exponential
backoff with jitter, or after what the service asked for (``Retry-After`` and
the like); FAILED for a permanent error or after the last attempt.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections import defaultdict

import anyio
import asyncpg
import httpx
import structlog
from pydantic import BaseModel, ValidationError

from uptimed import links as public_links
from uptimed import metrics
from uptimed.channels.base import Channel, Links, Notification, NotificationKind
from uptimed.channels.registry import ChannelRegistry, InvalidConfigError, UnknownChannelError
from uptimed.config import NotifySettings, SmtpSettings
from uptimed.event import MonitorEvent
from uptimed.failpoints import failpoint
from uptimed.notify.delivery import deliver
from uptimed.rules.targets import TRUSTED, TargetPolicy
from uptimed.store import notification_log, signing_keys
from uptimed.store.notification_log import Delivery
from uptimed.supervisor import progress

log = structlog.get_logger()

LEASE_MARGIN_S = 3.0
"""A claim outlives one attempt's timeout by this much before another process may take the row.

Small, because the owner renews it: the margin only has to cover a renewal
that is late, and it is most of the wait before a dead process's delivery is
tried again.
"""
RENEW_EVERY_S = 1.0
"""How often the rows this process holds get their lease extended."""


def backoff_delay(attempt: int, settings: NotifySettings, *, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: what the service asked for, else exponential with jitter."""
    if retry_after is not None:
        # Never earlier than asked; a little later so many waiters do not return at once.
        return min(retry_after, settings.backoff_max) * random.uniform(1.0, 1.1)
    ceiling = min(settings.backoff_max, settings.backoff_initial * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


IDLE_MAX_S = 5.0
"""The longest an idle dispatcher waits before it asks PostgreSQL again (this process's notifier wakes it at once)."""
USER_BUSY_RETRY_S = 1.0
"""A delivery of a user with ``deliveries_per_user`` in flight comes due again this much later."""


class Dispatcher:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        registry: ChannelRegistry,
        settings: NotifySettings,
        smtp: SmtpSettings,
        http: httpx.AsyncClient,
        owner: str | None = None,
        public_url: str | None = None,
        trusted_http: httpx.AsyncClient | None = None,
        policy: TargetPolicy = TRUSTED,
    ) -> None:
        self.pool = pool
        self.public_url = public_url
        """``[api] public_url``: where alerts link to; None, no links."""
        self._ack_key: bytes | None = None
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        """Who holds this process's leases, as the log shows it: host, pid and a random suffix."""
        self.registry = registry
        self.settings = settings
        self.smtp = smtp
        self.http = http
        """For users' integrations: made with ``policy`` (``uptimed.channels.http.delivery_client``)."""
        self.trusted_http = trusted_http or http
        """For integrations declared in the config file."""
        self.policy = policy
        self.lease_s = settings.delivery_timeout + LEASE_MARGIN_S
        self.progress_bound = max(30.0, 2 * settings.delivery_timeout)
        """Seconds without a claim or a finished delivery after which the dispatcher counts as stuck."""
        self.in_flight = 0
        self._held: set[int] = set()
        self._holding = anyio.Event()
        """Set when ``_held`` gets a row: the renewals sleep while nothing is held."""
        self.draining = False
        self._wake = anyio.Event()
        self._slot_freed = anyio.Event()
        self._per_channel: dict[str, anyio.Semaphore] = defaultdict(
            lambda: anyio.Semaphore(settings.per_channel_concurrency)
        )
        self._next_allowed: dict[int, float] = {}
        self._per_user: dict[int, int] = {}
        """Deliveries in flight to each user's own integrations (only users with one)."""

    def wake(self) -> None:
        """New intents were written: look for due rows now."""
        self._wake.set()

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._renew_leases)
            while not self.draining:
                free = self.settings.concurrency - self.in_flight
                if free <= 0:
                    self._slot_freed = anyio.Event()
                    await self._slot_freed.wait()
                    continue
                await failpoint("notify.before_delivery")
                self._wake = anyio.Event()  # before claiming, so a wake() during the claim is not lost
                claimed = await notification_log.claim_due(
                    self.pool, owner=self.owner, limit=min(free, 500), lease_s=self.lease_s
                )
                progress()
                for delivery in claimed:
                    self.in_flight += 1
                    self._held.add(delivery.id)
                    self._holding.set()
                    tg.start_soon(self._deliver, delivery)
                if len(claimed) < free:
                    await self._idle()
            await anyio.sleep_forever()

    async def _renew_leases(self) -> None:
        """Keep the rows this process holds from coming due for another process while it works on them."""
        while True:
            if not self._held:
                self._holding = anyio.Event()
                await self._holding.wait()
            await anyio.sleep(RENEW_EVERY_S)
            if self._held:
                await notification_log.renew(self.pool, list(self._held), owner=self.owner, lease_s=self.lease_s)

    async def drain(self) -> None:
        """Claim nothing more; let the deliveries in flight finish and record their outcome."""
        self.draining = True
        self._wake.set()
        while self.in_flight:
            self._slot_freed = anyio.Event()
            await self._slot_freed.wait()

    async def _idle(self) -> None:
        """Wait for new intents, or until the next row is due (at most :data:`IDLE_MAX_S`).

        Rows another process leased come due when their lease ends, which
        ``next_due_in`` sees, so a longer idle wait delays nobody: it only
        spares an idle daemon a query a second.
        """
        due_in = await notification_log.next_due_in(self.pool)
        timeout = IDLE_MAX_S if due_in is None else min(max(due_in, 0.02), IDLE_MAX_S)
        with anyio.move_on_after(timeout):
            await self._wake.wait()

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self._attempt(delivery)
        except Exception:
            log.exception("delivery.crashed", delivery_id=delivery.id, integration_id=delivery.integration_id)
        finally:
            self._held.discard(delivery.id)
            self.in_flight -= 1
            self._slot_freed.set()
            progress()

    async def _links(self, event: MonitorEvent, kind: NotificationKind, integration_id: int) -> Links:
        """Where this alert links to (nothing without ``[api] public_url``)."""
        base = self.public_url
        if base is None:
            return Links()
        incident = event.incidentId
        acknowledge = None
        if incident is not None and kind in (
            NotificationKind.DOWN,
            NotificationKind.REMINDER,
            NotificationKind.ESCALATION,
        ):
            if self._ack_key is None:
                self._ack_key = await signing_keys.get_or_create(self.pool, public_links.ACK_KEY)
            acknowledge = public_links.ack_url(base, self._ack_key, incident, integration_id)
        return Links(
            monitor=public_links.monitor_url(base, event.websiteId),
            incident=public_links.incident_url(base, incident) if incident is not None else None,
            acknowledge=acknowledge,
        )

    async def _attempt(self, delivery: Delivery) -> None:
        context = {
            "delivery_id": delivery.id,
            "integration_id": delivery.integration_id,
            "channel": delivery.type,
            "event_id": str(delivery.event_id),
        }
        if delivery.abandoned_by is not None:
            metrics.observe_delivery(delivery.type, "unknown")
            log.warning("delivery.outcome_unknown", attempt=delivery.attempts, owner=delivery.abandoned_by, **context)
        if not delivery.enabled:
            await notification_log.mark_failed(
                self.pool, delivery.id, owner=self.owner, error="integration is disabled", attempt=None
            )
            metrics.observe_delivery(delivery.type, "skipped")
            log.info("delivery.skipped", reason="integration disabled", **context)
            return
        try:
            channel = self.registry.get(delivery.type)
            config = self.registry.validate_config(delivery.type, delivery.config)
            event = MonitorEvent.model_validate(delivery.payload)
        except (UnknownChannelError, InvalidConfigError, ValidationError) as exc:
            message = str(exc) if not isinstance(exc, ValidationError) else "stored event is invalid"
            await notification_log.mark_failed(self.pool, delivery.id, owner=self.owner, error=message, attempt=None)
            metrics.observe_delivery(delivery.type, "failed")
            log.error("delivery.failed", error=message, **context)
            return

        user = None if delivery.declared else event.userId
        if user is not None:
            if self._per_user.get(user, 0) >= self.settings.deliveries_per_user:
                # Given back rather than waited for here: a waiting row would still hold a slot of its channel.
                await notification_log.postpone(self.pool, delivery.id, owner=self.owner, delay_s=USER_BUSY_RETRY_S)
                return
            self._per_user[user] = self._per_user.get(user, 0) + 1
        try:
            rate = getattr(channel, "rate_limit_per_s", None)
            if rate:
                now = time.monotonic()
                allowed = self._next_allowed.get(delivery.integration_id, 0.0)
                if now < allowed:
                    await notification_log.postpone(self.pool, delivery.id, owner=self.owner, delay_s=allowed - now)
                    return
                self._next_allowed[delivery.integration_id] = now + 1 / rate
            await self._send(delivery, channel, config, event, context)
        finally:
            if user is not None:
                left = self._per_user[user] - 1
                if left:
                    self._per_user[user] = left
                else:
                    del self._per_user[user]

    async def _send(
        self, delivery: Delivery, channel: Channel, config: BaseModel, event: MonitorEvent, context: dict[str, object]
    ) -> None:
        kind = NotificationKind.of(event)
        found_links = await self._links(event, kind, delivery.integration_id)
        async with self._per_channel[delivery.type]:
            # On record before the request leaves: if this process dies during it, the log says so.
            attempt = await notification_log.start_attempt(
                self.pool, delivery.id, owner=self.owner, lease_s=self.lease_s
            )
            if attempt is None:
                log.warning("delivery.lease_lost", **context)  # another process took it over
                return
            notification = Notification(
                kind=kind,
                event=event,
                config=config,
                http=self.trusted_http if delivery.declared else self.http,
                smtp=self.smtp,
                integration_id=delivery.integration_id,
                attempt=attempt,
                links=found_links,
                policy=TRUSTED if delivery.declared else self.policy,
            )
            sent = await deliver(channel, notification, timeout=self.settings.delivery_timeout)
        error, elapsed_ms = sent.error, round(sent.seconds * 1000, 1)

        if error is None:
            await notification_log.mark_sent(self.pool, delivery.id, owner=self.owner, attempt=attempt)
            metrics.observe_delivery(delivery.type, "sent", elapsed_ms / 1000)
            log.info("delivery.sent", attempt=attempt, ms=elapsed_ms, **context)
        elif error.retryable and attempt < self.settings.max_attempts:
            delay = backoff_delay(attempt, self.settings, retry_after=error.retry_after)
            await notification_log.mark_retrying(
                self.pool, delivery.id, owner=self.owner, attempt=attempt, delay_s=delay, error=error.message
            )
            metrics.observe_delivery(delivery.type, "retrying", elapsed_ms / 1000)
            log.warning(
                "delivery.retrying", attempt=attempt, retry_in_s=round(delay, 2), error=error.message, **context
            )
        else:
            await notification_log.mark_failed(
                self.pool, delivery.id, owner=self.owner, error=error.message, attempt=attempt
            )
            metrics.observe_delivery(delivery.type, "failed", elapsed_ms / 1000)
            log.error("delivery.failed", attempt=attempt, error=error.message, **context)
