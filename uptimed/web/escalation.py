"""``/escalation-policies``: the user's escalation policies, and the form that adds or edits one.

A policy is a name, ordered steps (each: a delay after the incident's start
and the integrations it notifies) and an optional repeat of the last step.
The form shows the steps there are plus an empty one; "Add a step" shows one
more without saving, and an empty step is left out. It is checked by the same
rules as the API and the config file (:mod:`uptimed.rules.escalation`), each
problem shown beside its field. Policies declared in ``uptimed.toml`` are
read-only here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from uptimed.durations import format_duration
from uptimed.rules import escalation
from uptimed.rules.errors import Invalid, Problem
from uptimed.rules.services import Services
from uptimed.store import escalation_policies, integrations, monitors, web_sessions
from uptimed.store.escalation_policies import StoredPolicy
from uptimed.web.context import Context, IdPath
from uptimed.web.integrations import MAX_INTEGRATIONS
from uptimed.web.session import Form, Posted, Visit, Visitor
from uptimed.web.templates import render

router = APIRouter(include_in_schema=False)

MAX_ROWS = 20
"""Step rows a form may post (a policy has at most 10 steps; empty rows are left out)."""

Values = dict[str, Any]
"""The form as typed: ``name``, ``repeat_every`` and ``steps``, a list of ``{name, after, integrations}``."""


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return format_duration(value) if value == int(value) else f"{value:g}s"


def values_of(policy: StoredPolicy) -> Values:
    return {
        "name": policy.name,
        "repeat_every": _seconds(policy.repeat_every_s),
        "steps": [
            {"name": s.name, "after": _seconds(s.after_s), "integrations": [str(i) for i in s.integration_ids]}
            for s in policy.steps
        ],
    }


def _blank() -> Values:
    return {"name": "", "repeat_every": "", "steps": [{"name": "", "after": "0s", "integrations": []}]}


def values_from(form: Form) -> Values:
    """The posted form, trimmed; every row kept as typed, so a refused form shows it again."""
    count = form.get("step_count")
    rows = [
        {
            "name": form.get(f"step-{number}-name").strip(),
            "after": form.get(f"step-{number}-after").strip(),
            "integrations": form.all(f"step-{number}-integrations"),
        }
        for number in range(min(int(count), MAX_ROWS) if count.isdigit() and len(count) <= 3 else 1)
    ]
    return {"name": form.get("name").strip(), "repeat_every": form.get("repeat_every").strip(), "steps": rows}


def _empty(row: dict[str, Any]) -> bool:
    return not row["name"] and not row["after"] and not row["integrations"]


def _data(values: Values) -> tuple[dict[str, Any], list[int]]:
    """The input of the policy's model, and which form row each step came from."""
    kept = [n for n, row in enumerate(values["steps"]) if not _empty(row)]
    steps = [
        {
            "name": values["steps"][n]["name"],
            "after": values["steps"][n]["after"] or "0",
            "integrations": [int(i) for i in values["steps"][n]["integrations"] if i.isdigit() and len(i) <= 18],
        }
        for n in kept
    ]
    return {"name": values["name"], "repeat_every": values["repeat_every"] or None, "steps": steps}, kept


def _field_of(problem: Problem, kept: list[int]) -> str:
    """The form field a problem is shown beside: ``step-1-after`` for ``("steps", 1, "after")``."""
    loc = problem.loc
    if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[1], int) and loc[1] < len(kept):
        return f"step-{kept[loc[1]]}-{loc[2]}"
    if loc[:1] in (("name",), ("repeat_every",), ("steps",)):
        return str(loc[0])
    return "form"


async def _form_page(
    request: Request,
    context: Services,
    visit: Visit,
    values: Values,
    *,
    policy: StoredPolicy | None,
    errors: dict[str, str] | None = None,
    status_code: int | None = None,
) -> HTMLResponse:
    owned = await integrations.page_for_owner(context.pool, visit.user.id, before_id=None, limit=MAX_INTEGRATIONS)
    return render(
        request,
        "escalation_policy_form.html",
        status_code=status_code or (422 if errors else 200),
        values=values,
        errors=errors or {},
        policy=policy,
        integrations=[(str(i.id), f"{context.registry.title(i.type)} #{i.id}", i.enabled) for i in reversed(owned)],
        action=f"/escalation-policies/{policy.id}/edit" if policy else "/escalation-policies",
    )


async def _save(request: Request, context: Services, visit: Visit, form: Form, policy: StoredPolicy | None) -> Response:
    values = values_from(form)
    if "add_step" in form:
        values["steps"].append({"name": "", "after": "", "integrations": []})
        return await _form_page(request, context, visit, values, policy=policy)
    data, kept = _data(values)
    try:
        fields = escalation.validated(data)
        if policy is None:
            saved = await escalation.create(context.pool, visit.user.id, fields)
        else:
            saved = await escalation.update(context.pool, policy, fields)
    except Invalid as invalid:
        errors: dict[str, str] = {}
        for problem in invalid.problems:
            errors.setdefault(_field_of(problem, kept), problem.msg)
        return await _form_page(request, context, visit, values, policy=policy, errors=errors)
    await web_sessions.set_notice(context.pool, visit.token, f"Saved the escalation policy “{saved.name}”.")
    return RedirectResponse("/escalation-policies", status_code=303)


@router.get("/escalation-policies")
async def policies_page(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    found = await escalation_policies.list_for_owner(context.pool, visit.user.id)
    owned = await integrations.page_for_owner(context.pool, visit.user.id, before_id=None, limit=MAX_INTEGRATIONS)
    names = {i.id: f"{context.registry.title(i.type)} #{i.id}" for i in owned}
    used = await monitors.get_many(context.pool, {m for p in found for m in p.monitor_ids})
    return render(
        request,
        "escalation_policies.html",
        notice=visit.notice,
        policies=found,
        names=names,
        monitors=used,
        seconds=_seconds,
    )


# Before /escalation-policies/{policy_id}/..., which would take "new" for an id.
@router.get("/escalation-policies/new")
async def new_form(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    return await _form_page(request, context, visit, _blank(), policy=None)


@router.post("/escalation-policies")
async def create(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    return await _save(request, context, visit, form, None)


@router.get("/escalation-policies/{policy_id}/edit")
async def edit_form(request: Request, policy_id: IdPath, visit: Visitor, context: Context) -> HTMLResponse:
    policy = await escalation.policy(context.pool, visit.user.id, policy_id, to_change=True)
    values = values_of(policy)
    values["steps"].append({"name": "", "after": "", "integrations": []})
    return await _form_page(request, context, visit, values, policy=policy)


@router.post("/escalation-policies/{policy_id}/edit")
async def edit(request: Request, policy_id: IdPath, visit: Visitor, form: Posted, context: Context) -> Response:
    policy = await escalation.policy(context.pool, visit.user.id, policy_id, to_change=True)
    return await _save(request, context, visit, form, policy)


@router.post("/escalation-policies/{policy_id}/delete")
async def delete(policy_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    policy = await escalation.policy(context.pool, visit.user.id, policy_id, to_change=True)
    await escalation.delete(context.pool, policy)
    await web_sessions.set_notice(context.pool, visit.token, f"Deleted the escalation policy “{policy.name}”.")
    return RedirectResponse("/escalation-policies", status_code=303)
