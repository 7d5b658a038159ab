"""A user's own monitors and integrations: reading one, and changing it unless the config file declares it.

Every read is scoped to the owner, so another user's object is
indistinguishable from one that does not exist (:class:`NotFound`). One
declared in the config file can be read and tested but not changed
(:class:`DeclaredInFile`): the file is its only source. Each change is
logged here once, whichever face asked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import asyncpg
import structlog

from uptimed.monitor import Monitor, MonitorFields
from uptimed.rules.errors import DeclaredInFile, Invalid, NotFound, Problem
from uptimed.rules.escalation import check_monitor_policy
from uptimed.rules.quotas import QuotaExceeded
from uptimed.store import integrations, monitors
from uptimed.store.integrations import Integration

log = structlog.get_logger()

Owned = TypeVar("Owned", Monitor, Integration)


def _what(item: Monitor | Integration) -> str:
    return "monitor" if isinstance(item, Monitor) else "integration"


def _found(item: Owned | None, what: str, *, to_change: bool) -> Owned:
    if item is None:
        raise NotFound(what)
    if to_change and item.declared_in_file:
        raise DeclaredInFile(what)
    return item


async def monitor(pool: asyncpg.Pool, user_id: int, monitor_id: int, *, to_change: bool = False) -> Monitor:
    """The user's monitor; with ``to_change``, only one the config file does not declare."""
    return _found(await monitors.get_owned(pool, user_id, monitor_id), "monitor", to_change=to_change)


async def integration(pool: asyncpg.Pool, user_id: int, integration_id: int, *, to_change: bool = False) -> Integration:
    """The user's integration; with ``to_change``, only one the config file does not declare."""
    return _found(await integrations.get_owned(pool, user_id, integration_id), "integration", to_change=to_change)


async def routing(pool: asyncpg.Pool, user_id: int, chosen: Sequence[int] | None) -> list[int] | None:
    """The integrations a monitor notifies, checked: each one the user's own; None (all of them) stays None.

    :class:`Invalid` at ``("integrations",)`` names an id that is not one of the user's integrations.
    """
    if chosen is None:
        return None
    wanted = list(dict.fromkeys(chosen))
    owned = {i.id for i in await integrations.page_for_owner(pool, user_id, before_id=None, limit=10_000)}
    strangers = [i for i in wanted if i not in owned]
    if strangers:
        raise Invalid([Problem(("integrations",), f"you have no integration #{strangers[0]}", "unknown_integration")])
    return wanted


async def create_monitor(
    pool: asyncpg.Pool,
    user_id: int,
    fields: MonitorFields,
    *,
    notify: Sequence[int] | None = None,
    limit: int | None = None,
) -> Monitor:
    """A new monitor of the user; ``fields`` checked already (:func:`uptimed.rules.admission.monitor_fields`).

    ``notify``: the integrations it notifies (None: all of them), checked here; its escalation policy
    must be the user's (:class:`~uptimed.rules.errors.Invalid` otherwise). With ``limit``,
    :class:`QuotaExceeded` when the user made that many already (counted under a lock, so exact).
    """
    await check_monitor_policy(pool, user_id, fields.escalation_policy_id)
    chosen = await routing(pool, user_id, notify)
    async with pool.acquire() as conn, conn.transaction():
        if limit is not None:
            await monitors.lock_owner(conn, user_id)
            if await monitors.count_made(conn, user_id) >= limit:
                raise QuotaExceeded("monitors", limit, "[quotas] monitors_per_user")
        created = await monitors.create(conn, user_id, fields, notify=chosen)
    log.info("monitor.created", monitor_id=created.id, user_id=user_id)
    return created


async def update_monitor(
    pool: asyncpg.Pool, item: Monitor, fields: MonitorFields, *, notify: Sequence[int] | None = None
) -> Monitor:
    """Replace every field of ``item`` and its routing (read ``to_change``; ``fields`` checked already)."""
    await check_monitor_policy(pool, item.owner_id, fields.escalation_policy_id)
    chosen = await routing(pool, item.owner_id, notify)
    updated = await monitors.update_owned(pool, item.owner_id, item.id, fields, notify=chosen)
    saved = _found(updated, "monitor", to_change=False)
    log.info("monitor.updated", monitor_id=item.id, user_id=item.owner_id)
    return saved


async def create_integration(
    pool: asyncpg.Pool,
    user_id: int,
    type_: str,
    config: dict[str, Any],
    *,
    name: str | None,
    enabled: bool = True,
    limit: int | None = None,
) -> Integration:
    """A new integration of the user; ``config`` validated already (:func:`uptimed.rules.integrations.validated`).

    With ``limit``, :class:`QuotaExceeded` when the user made that many already.
    """
    async with pool.acquire() as conn, conn.transaction():
        if limit is not None:
            await integrations.lock_owner(conn, user_id)
            if await integrations.count_made(conn, user_id) >= limit:
                raise QuotaExceeded("integrations", limit, "[quotas] integrations_per_user")
        created = await integrations.create(conn, user_id, type_, config, name=name, enabled=enabled)
    log.info("integration.created", integration_id=created.id, channel=created.type, user_id=user_id)
    return created


async def update_integration(
    pool: asyncpg.Pool, item: Integration, config: dict[str, Any], *, name: str | None = None
) -> Integration:
    """Replace the config of ``item``, and its name when given (read ``to_change``; ``config`` validated already)."""
    updated = await integrations.update_config(pool, item.owner_id, item.id, config, name=name)
    saved = _found(updated, "integration", to_change=False)
    log.info("integration.updated", integration_id=item.id, channel=saved.type, user_id=item.owner_id)
    return saved


async def toggle(pool: asyncpg.Pool, item: Owned) -> Owned:
    """Pause or resume ``item`` (read ``to_change``); it as it is now."""
    what = _what(item)
    if isinstance(item, Monitor):
        toggled: Any = await monitors.toggle_owned(pool, item.owner_id, item.id)
    else:
        toggled = await integrations.toggle(pool, item.owner_id, item.id)
    now: Owned = _found(toggled, what, to_change=False)
    log.info(f"{what}.toggled", **{f"{what}_id": item.id}, enabled=now.enabled, user_id=item.owner_id)
    return now


async def delete(pool: asyncpg.Pool, item: Monitor | Integration) -> None:
    """Delete ``item`` (read ``to_change``) with all that hangs off it."""
    what = _what(item)
    deleted = monitors.delete_owned if isinstance(item, Monitor) else integrations.delete_owned
    if not await deleted(pool, item.owner_id, item.id):
        raise NotFound(what)
    log.info(f"{what}.deleted", **{f"{what}_id": item.id}, user_id=item.owner_id)
