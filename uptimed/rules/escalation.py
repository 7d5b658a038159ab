"""A user's escalation policies: reading one, checking one, changing one unless the config file declares it.

A policy notifies only the owner's integrations (each step's are checked,
with the step's location: ``("steps", 1, "integrations")``); a monitor uses
only its owner's policy; a policy in use cannot be deleted (:class:`Conflict`
naming its monitors). Each change is logged here once, whichever face asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog
from pydantic import ValidationError

from uptimed.escalation_policy import PolicyFields
from uptimed.rules.errors import Conflict, DeclaredInFile, Invalid, NotFound, Problem, problems_of
from uptimed.store import escalation_policies, integrations, monitors
from uptimed.store.escalation_policies import StoredPolicy

log = structlog.get_logger()


async def policy(pool: asyncpg.Pool, user_id: int, policy_id: int, *, to_change: bool = False) -> StoredPolicy:
    """The user's policy; with ``to_change``, only one the config file does not declare."""
    found = await escalation_policies.get_owned(pool, user_id, policy_id)
    if found is None:
        raise NotFound("escalation policy")
    if to_change and found.declared_in_file:
        raise DeclaredInFile("escalation policy")
    return found


def validated(data: Mapping[str, Any]) -> PolicyFields:
    """``data`` (a form's values, say) as a policy; :class:`Invalid` with every problem's location."""
    try:
        return PolicyFields.model_validate(dict(data))
    except ValidationError as exc:
        raise Invalid(problems_of(exc)) from None


async def checked(pool: asyncpg.Pool, user_id: int, fields: PolicyFields) -> PolicyFields:
    """``fields`` unchanged if every step's integrations are the user's; else :class:`Invalid` at each step."""
    wanted = sorted({i for step in fields.steps for i in step.integrations})
    mine = await integrations.owned_ids(pool, user_id, wanted)
    problems = [
        Problem(("steps", number, "integrations"), f"you have no integration #{missing}", "not_found")
        for number, step in enumerate(fields.steps)
        for missing in step.integrations
        if missing not in mine
    ]
    if problems:
        raise Invalid(problems)
    return fields


async def check_monitor_policy(pool: asyncpg.Pool, user_id: int, policy_id: int | None) -> None:
    """A monitor may use only its owner's policy: :class:`Invalid` at ``escalation_policy_id`` otherwise."""
    if policy_id is not None and await escalation_policies.get_owned(pool, user_id, policy_id) is None:
        raise Invalid([Problem(("escalation_policy_id",), f"you have no escalation policy #{policy_id}", "not_found")])


async def create(pool: asyncpg.Pool, user_id: int, fields: PolicyFields) -> StoredPolicy:
    created = await escalation_policies.create(pool, user_id, await checked(pool, user_id, fields))
    log.info("escalation_policy.created", policy_id=created.id, user_id=user_id, steps=len(created.steps))
    return created


async def update(pool: asyncpg.Pool, item: StoredPolicy, fields: PolicyFields) -> StoredPolicy:
    """Replace ``item`` (read ``to_change``). Open incidents keep the steps they started with."""
    fields = await checked(pool, item.owner_id, fields)
    saved = await escalation_policies.update_owned(pool, item.owner_id, item.id, fields)
    if saved is None:
        raise NotFound("escalation policy")
    log.info("escalation_policy.updated", policy_id=item.id, user_id=item.owner_id, steps=len(saved.steps))
    return saved


async def delete(pool: asyncpg.Pool, item: StoredPolicy) -> None:
    """Delete ``item`` (read ``to_change``), unless a monitor uses it."""
    await _not_in_use(pool, item.owner_id, item.id, item.monitor_ids)
    try:
        deleted = await escalation_policies.delete_owned(pool, item.owner_id, item.id)
    except asyncpg.ForeignKeyViolationError:  # a monitor took it meanwhile
        current = await escalation_policies.get_owned(pool, item.owner_id, item.id)
        await _not_in_use(pool, item.owner_id, item.id, current.monitor_ids if current else ())
        raise
    if not deleted:
        raise NotFound("escalation policy")
    log.info("escalation_policy.deleted", policy_id=item.id, user_id=item.owner_id)


async def _not_in_use(pool: asyncpg.Pool, user_id: int, policy_id: int, monitor_ids: tuple[int, ...]) -> None:
    if not monitor_ids:
        return
    found = await monitors.get_many(pool, monitor_ids)
    names = ", ".join(f"“{found[m].name}”" for m in monitor_ids if m in found)
    raise Conflict(f"monitors use this escalation policy ({names}): choose another for them first")
