"""``/api/v1/escalation-policies``: the caller's escalation policies.

A policy is written as the config file writes one, with integrations by id:
``{"name": "Ops", "steps": [{"after": 0, "integrations": [3]}, {"after": "5m",
"integrations": [4, 5]}], "repeat_every": "15m"}``. A monitor uses one
through its ``escalation_policy_id``. Policies declared in the config file
are read-only here (409); one that monitors use cannot be deleted (409).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from uptimed.api.auth import Caller
from uptimed.api.bounds import IdPath
from uptimed.api.context import Context
from uptimed.api.errors import CONFLICT, INVALID, MALFORMED, NOT_FOUND, TOO_LARGE, UNAUTHORIZED
from uptimed.api.integrations import Deleted
from uptimed.escalation_policy import PolicyFields
from uptimed.rules import escalation
from uptimed.store import escalation_policies
from uptimed.store.escalation_policies import StoredPolicy

router = APIRouter(
    prefix="/api/v1/escalation-policies", tags=["escalation policies"], responses={**MALFORMED, **UNAUTHORIZED}
)


class StepOut(BaseModel):
    name: str
    after: float = Field(description="seconds after the incident's start")
    integrations: list[int]


class PolicyOut(BaseModel):
    id: int
    name: str
    steps: list[StepOut]
    repeat_every: float | None = Field(description="seconds between repeats of the last step; None: no repeat")
    monitors: list[int] = Field(description="ids of the monitors that use it")
    managed_by_config: bool = Field(description="declared in the config file: read-only here (409)")
    created_at: datetime
    updated_at: datetime


def out(policy: StoredPolicy) -> PolicyOut:
    return PolicyOut(
        id=policy.id,
        name=policy.name,
        steps=[StepOut(name=s.name, after=s.after_s, integrations=list(s.integration_ids)) for s in policy.steps],
        repeat_every=policy.repeat_every_s,
        monitors=list(policy.monitor_ids),
        managed_by_config=policy.declared_in_file,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PolicyOut,
    responses={**INVALID, **TOO_LARGE},
    summary="Create an escalation policy",
)
async def create_policy(body: PolicyFields, user: Caller, context: Context) -> PolicyOut:
    return out(await escalation.create(context.pool, user.id, body))


@router.get("", response_model=list[PolicyOut], summary="The caller's escalation policies, oldest first")
async def list_policies(user: Caller, context: Context) -> list[PolicyOut]:
    return [out(p) for p in await escalation_policies.list_for_owner(context.pool, user.id)]


@router.get("/{policy_id}", response_model=PolicyOut, responses={**NOT_FOUND, **INVALID}, summary="One policy")
async def get_policy(policy_id: IdPath, user: Caller, context: Context) -> PolicyOut:
    return out(await escalation.policy(context.pool, user.id, policy_id))


@router.put(
    "/{policy_id}",
    response_model=PolicyOut,
    responses={**NOT_FOUND, **CONFLICT, **INVALID, **TOO_LARGE},
    summary="Replace a policy (open incidents keep the steps they started with)",
)
async def update_policy(policy_id: IdPath, body: PolicyFields, user: Caller, context: Context) -> PolicyOut:
    policy = await escalation.policy(context.pool, user.id, policy_id, to_change=True)
    return out(await escalation.update(context.pool, policy, body))


@router.delete(
    "/{policy_id}",
    response_model=Deleted,
    responses={**NOT_FOUND, 409: {"description": "declared in the config file, or monitors use it"}, **INVALID},
    summary="Delete a policy no monitor uses",
)
async def delete_policy(policy_id: IdPath, user: Caller, context: Context) -> Deleted:
    await escalation.delete(context.pool, await escalation.policy(context.pool, user.id, policy_id, to_change=True))
    return Deleted()
