"""``/integrations``: the user's integrations as cards, the "Add integration" dialog, toggle, delete, test.

The dialog's fields come from each channel's config fields (:mod:`uptimed.web.forms`),
and a posted form is checked by :func:`uptimed.rules.integrations.validated`,
so the page refuses exactly what the API refuses, with the same message next to
the field. Secrets are shown masked, as the API masks them. Integrations
declared in ``uptimed.toml`` are read-only here as they are through the API (409).

Editing keeps every secret the form leaves empty (the page never holds one),
as a PUT through the API does. A refused "Add integration" dialog shows again
everything that was typed into it, secrets too: they were typed into this
very form a moment ago, and nothing is stored yet.

Each card shows the integration's name, its newest delivery and, when some of
its latest deliveries failed, a warning that links to those rows of the log.

"Send test" answers a redirect with the result as the page's notice, or, when
app.js sends it (``X-Uptimed-Fetch``), ``{status, error}`` as JSON (as the
API answers) for the card to show in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from uptimed.channels.registry import BrokenChannel
from uptimed.rules import admission, owned
from uptimed.rules.errors import Invalid
from uptimed.rules.integrations import (
    checked_name,
    default_name,
    keep_secrets,
    masked,
    name_of,
    send_test,
    validated,
)
from uptimed.rules.quotas import QuotaExceeded, RateLimited
from uptimed.rules.services import Services
from uptimed.store import integrations, web_sessions
from uptimed.store.integrations import Integration, LastDeliveries
from uptimed.web.context import Context, IdPath
from uptimed.web.forms import (
    ChannelForm,
    FormField,
    channel_forms,
    entered,
    field_errors,
    initial_values,
    read_config,
    stored_values,
    summary,
)
from uptimed.web.session import PageError, Posted, Visit, Visitor
from uptimed.web.templates import SECURITY_HEADERS, render

log = structlog.get_logger()

router = APIRouter(include_in_schema=False)

MAX_INTEGRATIONS = 1000
PREFERRED_TYPE = "webhook"

AddQuery = Annotated[str | None, Query(max_length=64)]


RECENT_DELIVERIES = 5
"""A card warns when any of this many newest deliveries failed."""


@dataclass(frozen=True)
class Card:
    """One integration as its card shows it."""

    integration: Integration
    name: str
    title: str
    summary: str
    installed: bool
    icon: tuple[str, ...]
    """SVG path data the channel declares; () for the built-in mark or the generic plug."""
    deliveries: LastDeliveries | None = None
    """Its newest delivery and the failures among the last few; None before any."""

    @property
    def failing(self) -> bool:
        """Enabled, and some of its latest deliveries failed."""
        return self.integration.enabled and self.deliveries is not None and self.deliveries.failed > 0


@dataclass(frozen=True)
class Adding:
    """The state of the "Add integration" dialog."""

    chosen: str
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    open: bool = False


def cards(
    context: Services,
    items: list[Integration],
    forms: dict[str, ChannelForm],
    deliveries: dict[int, LastDeliveries] | None = None,
) -> list[Card]:
    """``items`` as cards, each config summed up in one line with its secrets masked."""
    deliveries = deliveries or {}
    return [
        Card(
            integration=item,
            name=name_of(context.registry, item),
            title=context.registry.title(item.type),
            summary=summary(forms.get(item.type), masked(context.registry, item)),
            installed=item.type in context.registry,
            icon=context.registry.icon(item.type),
            deliveries=deliveries.get(item.id),
        )
        for item in items
    ]


def _default_type(forms: dict[str, ChannelForm], wanted: str | None = None) -> str:
    for name in (wanted, PREFERRED_TYPE):
        if name is not None and name in forms:
            return name
    return next(iter(forms), "")


async def _page(
    request: Request,
    visit: Visit,
    context: Services,
    forms: dict[str, ChannelForm],
    adding: Adding,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    items = await integrations.page_for_owner(context.pool, visit.user.id, before_id=None, limit=MAX_INTEGRATIONS)
    deliveries = await integrations.recent_deliveries(context.pool, visit.user.id, window=RECENT_DELIVERIES)
    broken: list[BrokenChannel] = context.registry.broken
    return render(
        request,
        "integrations.html",
        status_code=status_code,
        cards=cards(context, items, forms, deliveries),
        forms=list(forms.values()),
        adding=adding,
        broken=broken,
        notice=visit.notice,
    )


def _forms(context: Services) -> dict[str, ChannelForm]:
    return {form.type: form for form in channel_forms(context.registry)}


@router.get("/integrations")
async def integrations_page(request: Request, visit: Visitor, context: Context, add: AddQuery = None) -> HTMLResponse:
    forms = _forms(context)
    # ?add=1 (or ?add=<type>) opens the dialog without JavaScript.
    adding = Adding(chosen=_default_type(forms, add), values=initial_values(forms.values()), open=add is not None)
    return await _page(request, visit, context, forms, adding)


@router.post("/integrations")
async def add_integration(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    forms = _forms(context)
    chosen = forms.get(form.get("type"))
    if chosen is None:
        adding = Adding(
            chosen=_default_type(forms),
            values=initial_values(forms.values()),
            open=True,
            errors={"type": "Choose one of the listed types."},
            problem="Choose the type of the integration.",
        )
        return await _page(request, visit, context, forms, adding, status_code=422)
    read = read_config(chosen, form.fields)
    errors = dict(read.errors)
    name: str | None = None
    try:
        name = checked_name(form.get("name"))
    except Invalid as exc:
        errors["name"] = exc.problems[0].msg
    problem: str | None = None
    try:
        config = await admission.integration_config(context, validated(context.registry, chosen.type, read.config))
        if not errors:
            name = name or default_name(context.registry, chosen.type, config)
            await admission.create_integration(context, visit.user.id, chosen.type, config, name=name)
    except Invalid as exc:
        for field_name, message in field_errors(chosen, exc.problems).items():
            errors.setdefault(field_name, message)
    except QuotaExceeded as exc:
        problem = f"{exc}."
    if errors or problem:
        values = {
            **initial_values(forms.values()),
            **entered(chosen, form.fields, secrets=True),
            "name": form.get("name"),
        }
        problem = problem or _problem(chosen, errors)
        adding = Adding(chosen=chosen.type, values=values, errors=errors, problem=problem, open=True)
        status_code = 409 if not errors else 422
        return await _page(request, visit, context, forms, adding, status_code=status_code)
    await web_sessions.set_notice(context.pool, visit.token, f"Integration “{name}” added.")
    return _back()


def _problem(form: ChannelForm, errors: dict[str, str], *, editing: bool = False) -> str:
    """The dialog's summary of what to fix: the fields by their labels."""
    labels = (["Name"] if "name" in errors else []) + [item.label for item in form.fields if item.name in errors]
    if form.type in errors:
        labels.append(errors[form.type])
    secrets = (
        " Stored secrets are never sent back to the page: leave them empty to keep them."
        if editing and any(i.secret for i in form.fields)
        else ""
    )
    return f"Check {', '.join(labels)}.{secrets}" if labels else f"Check the {form.title} settings.{secrets}"


def _back() -> RedirectResponse:
    return RedirectResponse("/integrations", status_code=303)


def _edit_page(
    request: Request,
    context: Services,
    integration: Integration,
    form: ChannelForm,
    *,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    errors = errors or {}
    return render(
        request,
        "integration_edit.html",
        status_code=status_code,
        integration=integration,
        form=form,
        values=values,
        errors=errors,
        problem=_problem(form, errors, editing=True) if errors else None,
        removable=removable_secrets(form, integration),
        name=name_of(context.registry, integration),
    )


def removable_secrets(form: ChannelForm, integration: Integration) -> list[FormField]:
    """Optional secrets that are set: the edit page offers to remove them (leaving one empty keeps it)."""
    return [
        item
        for item in form.fields
        if item.secret and not item.required and integration.config.get(item.key) not in (None, "", {}, [])
    ]


def _form_of(context: Services, integration: Integration) -> ChannelForm:
    form = _forms(context).get(integration.type)
    if form is None:
        raise PageError(
            409,
            "Channel not installed",
            f"The {integration.type!r} channel is not installed here, so this integration cannot be edited.",
        )
    return form


@router.get("/integrations/{integration_id}/edit")
async def edit_page(request: Request, integration_id: IdPath, visit: Visitor, context: Context) -> HTMLResponse:
    integration = await owned.integration(context.pool, visit.user.id, integration_id, to_change=True)
    form = _form_of(context, integration)
    values = {
        **stored_values(form, masked(context.registry, integration)),
        "name": name_of(context.registry, integration),
    }
    return _edit_page(request, context, integration, form, values=values)


@router.post("/integrations/{integration_id}/edit")
async def edit_integration(
    request: Request, integration_id: IdPath, visit: Visitor, posted: Posted, context: Context
) -> Response:
    integration = await owned.integration(context.pool, visit.user.id, integration_id, to_change=True)
    form = _form_of(context, integration)
    read = read_config(form, posted.fields)
    errors = dict(read.errors)
    name: str | None = None
    try:
        name = checked_name(posted.get("name"))
    except Invalid as exc:
        errors["name"] = exc.problems[0].msg
    for item in removable_secrets(form, integration):
        if posted.get(f"remove.{item.name}"):
            read.config[item.key] = None  # explicitly empty: keep_secrets keeps only what is left out
    try:
        kept = keep_secrets(context.registry, integration, read.config)
        config = await admission.integration_config(context, validated(context.registry, integration.type, kept))
    except Invalid as exc:
        for name, message in field_errors(form, exc.problems).items():
            errors.setdefault(name, message)
    if errors:
        values = {**entered(form, posted.fields), "name": posted.get("name")}
        return _edit_page(request, context, integration, form, values=values, errors=errors, status_code=422)
    name = name or default_name(context.registry, integration.type, config)
    saved = await owned.update_integration(context.pool, integration, config, name=name)
    await web_sessions.set_notice(context.pool, visit.token, f"Integration “{saved.name}” saved.")
    return _back()


@router.post("/integrations/{integration_id}/toggle")
async def toggle_integration(integration_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    integration = await owned.integration(context.pool, visit.user.id, integration_id, to_change=True)
    toggled = await owned.toggle(context.pool, integration)
    state = "enabled" if toggled.enabled else "disabled: it sends nothing until you enable it again"
    await web_sessions.set_notice(context.pool, visit.token, f"“{name_of(context.registry, toggled)}” {state}.")
    return _back()


@router.post("/integrations/{integration_id}/delete")
async def delete_integration(integration_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    integration = await owned.integration(context.pool, visit.user.id, integration_id, to_change=True)
    await owned.delete(context.pool, integration)
    await web_sessions.set_notice(context.pool, visit.token, f"“{name_of(context.registry, integration)}” deleted.")
    return _back()


@router.post("/integrations/{integration_id}/test")
async def test_integration(
    request: Request, integration_id: IdPath, visit: Visitor, _: Posted, context: Context
) -> Response:
    integration = await owned.integration(context.pool, visit.user.id, integration_id)
    try:
        result = await send_test(context, visit.user.id, integration)
    except RateLimited as exc:
        if request.headers.get("X-Uptimed-Fetch"):
            headers = {**SECURITY_HEADERS, "Cache-Control": "no-store", "Retry-After": str(math.ceil(exc.retry_after))}
            return JSONResponse({"status": "failed", "error": f"{exc}."}, status_code=429, headers=headers)
        await web_sessions.set_notice(context.pool, visit.token, f"Test not sent: {exc}.")
        return _back()
    log.info(
        "integration.tested",
        integration_id=integration.id,
        channel=integration.type,
        status=result.status,
        user_id=visit.user.id,
    )
    if request.headers.get("X-Uptimed-Fetch"):
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        return JSONResponse({"status": result.status, "error": result.error}, headers=headers)
    name = name_of(context.registry, integration)
    notice = f"Test sent to “{name}”." if result.status == "sent" else f"Test to “{name}” failed: {result.error}"
    await web_sessions.set_notice(context.pool, visit.token, notice)
    return _back()
