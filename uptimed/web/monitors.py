"""``/monitors/...``: one monitor's page (chart, checks, incidents) and the form that adds or edits one.

The form is read into :class:`~uptimed.monitor.MonitorFields` and checked by
:func:`uptimed.rules.monitors.validated`, so a value the API or the config
file would refuse is refused here with the same message, shown next to its
field. Monitors declared in ``uptimed.toml`` are read-only here as they are
through the API (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from uptimed.durations import format_duration
from uptimed.monitor import Monitor, MonitorFields
from uptimed.probe.heartbeat import HeartbeatOptions
from uptimed.probe.kinds import default_kinds
from uptimed.rules import admission, badges, cursors, owned
from uptimed.rules import status as monitor_status
from uptimed.rules.credentials import keep_credentials, masked_target
from uptimed.rules.errors import Invalid, Loc, Problem, dotted
from uptimed.rules.integrations import name_of
from uptimed.rules.kinds import keep_secrets
from uptimed.rules.monitors import validated
from uptimed.rules.quotas import QuotaExceeded
from uptimed.rules.services import Services
from uptimed.store import checks, escalation_policies, incidents, integrations, stats, web_sessions
from uptimed.store.checks import StoredCheck
from uptimed.store.incidents import IncidentRecord
from uptimed.store.integrations import Integration
from uptimed.web import charts
from uptimed.web.context import Context, IdPath
from uptimed.web.forms import (
    ChannelForm,
    ReadConfig,
    entered,
    initial_values,
    kind_forms,
    read_config,
    stored_values,
)
from uptimed.web.session import Form, Posted, Visitor, not_found
from uptimed.web.templates import render

router = APIRouter(include_in_schema=False)

MAX_INTEGRATIONS = 1000
CHECKS_PER_PAGE = 50
INCIDENTS_SHOWN = 20

Span = Literal["1h", "24h", "7d", "30d"]


@dataclass(frozen=True)
class Range:
    label: str
    length: timedelta
    buckets: int


RANGES: dict[str, Range] = {
    "1h": Range("1 hour", timedelta(hours=1), 60),
    "24h": Range("24 hours", timedelta(hours=24), 96),
    "7d": Range("7 days", timedelta(days=7), 84),
    "30d": Range("30 days", timedelta(days=30), 90),
}

RangeQuery = Annotated[Span | None, Query(alias="range")]
FIT_MIN = timedelta(minutes=5)
"""A monitor younger than this is charted over this much time."""


def fitted(span: str | None, created_at: datetime, now: datetime) -> tuple[Range, str | None]:
    """The chart's range: the one asked for, else the smallest that holds the whole life of the monitor.

    A monitor younger than an hour is charted from its creation, so its first
    checks fill the chart instead of a few pixels at its right edge.
    """
    if span is not None:
        return RANGES[span], span
    age = now - created_at
    for key, window in RANGES.items():
        if age <= window.length:
            if key != "1h":
                return window, key
            length = max(age, FIT_MIN)
            buckets = max(10, min(60, int(length / timedelta(seconds=10))))
            return Range(f"{duration_text(length)} (since it was created)", length, buckets), None
    return RANGES["30d"], "30d"


def duration_text(length: timedelta) -> str:
    minutes = max(1, round(length.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


BeforeQuery = Annotated[str | None, Query(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]


# The monitor's page


@dataclass(frozen=True)
class ShownIncident:
    """An incident as a table shows it (here and on the incidents page)."""

    record: IncidentRecord
    seconds: float
    """How long it lasted, or has lasted so far."""


def shown_incident(record: IncidentRecord, now: datetime) -> ShownIncident:
    return ShownIncident(record, ((record.resolved_at or now) - record.opened_at).total_seconds())


def _before(cursor: str | None) -> tuple[datetime, str] | None:
    try:
        return cursors.decode(cursor, cursors.check_position)
    except Invalid:
        raise not_found("page") from None


def _older(shown: list[StoredCheck]) -> str:
    return cursors.check_cursor(shown[-1].checked_at, shown[-1].region)


# Before /monitors/{monitor_id}, which would take "new" for an id and answer 404.
@router.get("/monitors/new")
async def new_form(request: Request, visit: Visitor, context: Context) -> HTMLResponse:
    forms = _kind_forms()
    return await _form_page(request, context, visit.user.id, _blank(forms), forms, monitor=None)


@router.get("/monitors/{monitor_id}")
async def monitor_page(
    request: Request,
    monitor_id: IdPath,
    visit: Visitor,
    context: Context,
    span: RangeQuery = None,
    before: BeforeQuery = None,
) -> HTMLResponse:
    position = _before(before)
    view = await monitor_status.one(
        context.pool, visit.user.id, monitor_id, silence_intervals=context.settings.evaluate.region_silence
    )
    monitor = view.monitor
    now = datetime.now(UTC)
    first = await checks.first_at(context.pool, monitor_id)
    window, shown_span = fitted(span, min(view.created_at, first) if first else view.created_at, now)
    series = await stats.region_response_times(
        context.pool, visit.user.id, monitor_id, since=now - window.length, until=now, buckets=window.buckets
    )
    chart = charts.response_chart(series, start=now - window.length, end=now)
    rows = await checks.page_for_owner(
        context.pool,
        visit.user.id,
        monitor_id,
        since=None,
        until=None,
        region=None,
        before=position,
        limit=CHECKS_PER_PAGE + 1,
    )
    shown = rows[:CHECKS_PER_PAGE]
    found = await incidents.page_for_owner(
        context.pool,
        visit.user.id,
        monitor_id=monitor_id,
        open_only=False,
        since=None,
        before_id=None,
        limit=INCIDENTS_SHOWN,
    )
    owned_integrations = await integrations.page_for_owner(
        context.pool, visit.user.id, before_id=None, limit=MAX_INTEGRATIONS
    )
    return render(
        request,
        "monitor.html",
        notice=visit.notice,
        notifies=_notifies(context, monitor, owned_integrations),
        v=view,
        m=monitor,
        shown_status=view.shown,
        span=shown_span,
        window=window,
        ranges=RANGES,
        chart=chart,
        checks=shown,
        older=_older(shown) if len(rows) > CHECKS_PER_PAGE else None,
        paged=position is not None,
        incidents=[shown_incident(r, now) for r in found],
        interval=_duration_text(monitor.interval),
        effective_regions=monitor.effective_regions(context.settings.probe.all_regions),
        kind_title=default_kinds().title(monitor.kind),
        ping_url=_ping_url(request, monitor),
        schedule=monitor.options.describe() if isinstance(monitor.options, HeartbeatOptions) else None,
    )


def _notifies(context: Services, monitor: Monitor, owned: list[Integration]) -> str:
    """Where its alerts go, in words."""
    if monitor.notify_integrations is None:
        return "all your integrations" if owned else "all your integrations (none yet)"
    names = {i.id: name_of(context.registry, i) for i in owned}
    chosen = [names[i] for i in monitor.notify_integrations if i in names]
    return ", ".join(chosen) if chosen else "nobody: none of its chosen integrations is left"


@router.post("/monitors/{monitor_id}/badges")
async def enable_badges(monitor_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    await badges.enable(context.pool, await owned.monitor(context.pool, visit.user.id, monitor_id))
    await web_sessions.set_notice(context.pool, visit.token, "Badges are public at the addresses below.")
    return RedirectResponse(f"/monitors/{monitor_id}#badges", status_code=303)


@router.post("/monitors/{monitor_id}/badges/delete")
async def disable_badges(monitor_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    await badges.disable(context.pool, await owned.monitor(context.pool, visit.user.id, monitor_id))
    await web_sessions.set_notice(context.pool, visit.token, "Badges taken down: their addresses answer 404 now.")
    return RedirectResponse(f"/monitors/{monitor_id}#badges", status_code=303)


def _ping_url(request: Request, monitor: Monitor) -> str | None:
    """Where a heartbeat's job pings: this server, as the visitor reached it."""
    if monitor.scheduled or monitor.ping_token is None:
        return None
    return f"{str(request.base_url).rstrip('/')}/ping/{monitor.ping_token}"


@router.post("/monitors/{monitor_id}/toggle")
async def toggle(monitor_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    monitor = await owned.monitor(context.pool, visit.user.id, monitor_id, to_change=True)
    toggled = await owned.toggle(context.pool, monitor)
    verb = "Resumed" if toggled.enabled else "Paused"
    await web_sessions.set_notice(context.pool, visit.token, f"{verb} “{toggled.name}”.")
    return RedirectResponse(f"/monitors/{monitor_id}", status_code=303)


@router.post("/monitors/{monitor_id}/delete")
async def delete(monitor_id: IdPath, visit: Visitor, _: Posted, context: Context) -> Response:
    monitor = await owned.monitor(context.pool, visit.user.id, monitor_id, to_change=True)
    await owned.delete(context.pool, monitor)
    await web_sessions.set_notice(context.pool, visit.token, f"Deleted “{monitor.name}” with its checks and incidents.")
    return RedirectResponse("/", status_code=303)


# The form: one template for adding and editing. The fields every monitor has are written out in the
# template; each kind's options come from its model (uptimed.web.forms.kind_form), as the integration
# dialog's do from a channel's, so a plugin kind gets its fields with no page code.

Values = dict[str, Any]
"""What the form's fields hold, as text (checkboxes as booleans, regions as a list), by field name."""

FIELDS = (
    "name",
    "target",
    "kind",
    "interval",
    "timeout",
    "regions",
    "failure_threshold",
    "success_threshold",
    "quorum",
    "slow_threshold_ms",
    "repeat_interval",
    "escalation_policy_id",
    "tags",
)
"""The fields every monitor has; a kind's are named ``<kind>.<option>`` (``http.method``, ``dns.record``)."""

LABELS = {
    "name": "Name",
    "target": "Target",
    "kind": "Kind",
    "interval": "Interval",
    "timeout": "Timeout",
    "regions": "Regions",
    "failure_threshold": "Failure threshold",
    "success_threshold": "Success threshold",
    "quorum": "Quorum",
    "slow_threshold_ms": "Slow threshold",
    "repeat_interval": "Reminder interval",
    "escalation_policy_id": "Escalation policy",
    "tags": "Tags",
    "integrations": "Notify",
    "form": "Form",
}


def _kind_forms() -> dict[str, ChannelForm]:
    return {form.type: form for form in kind_forms(default_kinds())}


def _duration_text(seconds: float | None) -> str:
    """``"30s"``, ``"5m"``, ``"1h 30m"``: what the config file would say."""
    if seconds is None:
        return ""
    return format_duration(seconds) if seconds == int(seconds) else f"{seconds:g}s"


def values_of(fields: MonitorFields, forms: dict[str, ChannelForm]) -> Values:
    """The form filled in with a monitor's fields: its own kind's options (and http's) as stored, the rest blank."""
    values: Values = {
        "name": fields.name,
        "target": masked_target(fields.target),  # a password in it stays on the server
        "kind": fields.kind,
        "interval": _duration_text(fields.interval),
        "timeout": _duration_text(fields.timeout),
        "regions": list(fields.regions),
        "failure_threshold": str(fields.failure_threshold),
        "success_threshold": str(fields.success_threshold),
        "quorum": "" if fields.quorum is None else str(fields.quorum),
        "slow_threshold_ms": "" if fields.slow_threshold_ms is None else str(fields.slow_threshold_ms),
        "repeat_interval": _duration_text(fields.repeat_interval),
        "escalation_policy_id": "" if fields.escalation_policy_id is None else str(fields.escalation_policy_id),
        "tags": ", ".join(fields.tags),
        "notify": "all",
        "integrations": [],
        **initial_values(forms.values()),
    }
    for kind, form in forms.items():
        options = fields.options_for(kind)
        if options is not None:
            values.update(stored_values(form, {name: getattr(options, name) for name in type(options).model_fields}))
    return values


def values_of_monitor(monitor: Monitor, forms: dict[str, ChannelForm]) -> Values:
    """The form filled in with a stored monitor, its routing too."""
    values = values_of(monitor, forms)
    if monitor.notify_integrations is not None:
        values.update(notify="chosen", integrations=[str(i) for i in monitor.notify_integrations])
    return values


def _blank(forms: dict[str, ChannelForm]) -> Values:
    return values_of(MonitorFields.model_construct(name="", target=""), forms)


def values_from(form: Form, forms: dict[str, ChannelForm]) -> Values:
    """The posted form's values, trimmed; kept as typed so a refused form shows them again (never a secret)."""
    values: Values = {name: form.get(name).strip() for name in FIELDS}
    values["regions"] = form.all("regions")
    values["notify"] = "chosen" if form.get("notify") == "chosen" else "all"
    values["integrations"] = form.all("integrations")
    values.update(initial_values(forms.values()))
    chosen = forms.get(values["kind"])
    if chosen is not None:
        values.update(entered(chosen, form.fields))
    return values


def notify_of(values: Values) -> list[int] | None:
    """The integrations the form chose (None: all of them); ids that are no number are dropped."""
    if values["notify"] != "chosen":
        return None
    return [int(v) for v in values["integrations"] if v.isdigit() and len(v) <= 18]


def _optional(text: str) -> str | None:
    return text or None


def _kind_options(chosen: ChannelForm, form: Form, base: MonitorFields | None) -> ReadConfig:
    """The chosen kind's options as posted; a field the form did not send at all keeps its stored value."""
    read = read_config(chosen, form.fields)
    stored = base.options_for(chosen.type) if base is not None else None
    options: dict[str, Any] = {}
    if stored is not None:
        for item in chosen.fields:
            if item.name not in form and item.control != "checkbox" and not item.secret:
                options[item.key] = getattr(stored, item.key, None)
    options.update(read.config)
    return ReadConfig(config=options, errors=read.errors)


def _fields_data(
    values: Values, form: Form, forms: dict[str, ChannelForm], *, base: MonitorFields | None
) -> ReadConfig:
    """The input of :class:`MonitorFields` and what the form itself got wrong; ``enabled`` and http's options
    (for another kind) come from ``base``."""
    kind = values["kind"] or "http"
    data: dict[str, Any] = {
        "name": values["name"],
        "target": values["target"],
        "kind": kind,
        "interval": values["interval"],
        "timeout": values["timeout"],
        "regions": values["regions"],
        "failure_threshold": values["failure_threshold"],
        "success_threshold": values["success_threshold"],
        "quorum": _optional(values["quorum"]),
        "slow_threshold_ms": _optional(values["slow_threshold_ms"]),
        "repeat_interval": _optional(values["repeat_interval"]),
        "escalation_policy_id": _optional(values["escalation_policy_id"]),
        "enabled": base.enabled if base else True,
        "tags": [t for t in (p.strip() for p in values["tags"].split(",")) if t],
    }
    if base is not None and kind != "http":
        data["http"] = base.http
    chosen = forms.get(kind)
    if chosen is None:
        return ReadConfig(config=data)
    read = _kind_options(chosen, form, base)
    data[kind] = read.config
    return ReadConfig(config=data, errors=read.errors)


def _field_of(problem: Problem, forms: dict[str, ChannelForm]) -> str:
    """The form field a problem is shown beside: ``dns.record`` for ``("dns", "record")``; else the whole form."""
    loc: Loc = problem.loc or problem.about
    if loc and loc[0] in forms:
        item = forms[str(loc[0])].field(str(loc[1])) if len(loc) > 1 else None
        return item.name if item is not None else str(loc[0])
    name = dotted(loc[:1])
    return name if name in FIELDS or name == "integrations" else "form"


async def validate(
    context: Services, values: Values, form: Form, forms: dict[str, ChannelForm], *, base: Monitor | None
) -> MonitorFields | dict[str, str]:
    """The monitor the form describes, checked as the API checks it, or each problem by its field.

    A stored secret the form leaves empty is kept, and so are credentials it sends back masked.
    """
    read = _fields_data(values, form, forms, base=base)
    problems = dict(read.errors)
    try:
        fields = validated(read.config, context.settings.probe.all_regions)
        if base is not None:
            fields = keep_credentials(base, fields)
        fields = await admission.monitor_fields(context, fields)
    except Invalid as invalid:
        return {**_problems(invalid, forms), **problems}
    if problems:
        return problems
    return keep_secrets(base, fields) if base is not None else fields


def _problems(invalid: Invalid, forms: dict[str, ChannelForm]) -> dict[str, str]:
    """Each problem beside its field (the first one a field has)."""
    problems: dict[str, str] = {}
    for problem in invalid.problems:
        problems.setdefault(_field_of(problem, forms), "is required" if problem.type == "missing" else problem.msg)
    return problems


async def _form_page(
    request: Request,
    context: Services,
    user_id: int,
    values: Values,
    forms: dict[str, ChannelForm],
    *,
    monitor: Monitor | None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    owned = await integrations.page_for_owner(context.pool, user_id, before_id=None, limit=MAX_INTEGRATIONS)
    policies = await escalation_policies.list_for_owner(context.pool, user_id)
    labels = dict(LABELS)
    anchors = {name: name.replace(".", "-") for name in LABELS}
    kinds = default_kinds()
    for form in forms.values():
        labels[form.type] = f"{form.title} options"
        anchors[form.type] = f"channel-{form.type}"
        for item in form.fields:
            labels[item.name] = f"{form.title}: {item.label}"
            anchors[item.name] = item.input_id
    return render(
        request,
        "monitor_form.html",
        status_code=422 if errors else 200,
        values=values,
        errors=errors or {},
        monitor=monitor,
        all_regions=context.settings.probe.all_regions,
        policies=[("", "None: every integration at once"), *((str(p.id), p.name) for p in policies)],
        kind_forms=list(forms.values()),
        kind_choices=[(form.type, form.title) for form in forms.values()],
        target_help={name: kinds.target_help(name) for name in forms},
        labels=labels,
        anchors=anchors,
        action=f"/monitors/{monitor.id}/edit" if monitor else "/monitors",
        integrations=[(i.id, name_of(context.registry, i)) for i in reversed(owned)],
    )


@router.post("/monitors")
async def create(request: Request, visit: Visitor, form: Posted, context: Context) -> Response:
    forms = _kind_forms()
    values = values_from(form, forms)
    fields = await validate(context, values, form, forms, base=None)
    if isinstance(fields, dict):
        return await _form_page(request, context, visit.user.id, values, forms, monitor=None, errors=fields)
    try:
        monitor = await admission.create_monitor(context, visit.user.id, fields, notify=notify_of(values))
    except QuotaExceeded as exc:
        return await _form_page(request, context, visit.user.id, values, forms, monitor=None, errors={"form": str(exc)})
    except Invalid as invalid:
        return await _form_page(
            request, context, visit.user.id, values, forms, monitor=None, errors=_problems(invalid, forms)
        )
    await web_sessions.set_notice(context.pool, visit.token, f"Created “{monitor.name}”.")
    return RedirectResponse(f"/monitors/{monitor.id}", status_code=303)


@router.get("/monitors/{monitor_id}/edit")
async def edit_form(request: Request, monitor_id: IdPath, visit: Visitor, context: Context) -> HTMLResponse:
    monitor = await owned.monitor(context.pool, visit.user.id, monitor_id, to_change=True)
    forms = _kind_forms()
    return await _form_page(request, context, visit.user.id, values_of_monitor(monitor, forms), forms, monitor=monitor)


@router.post("/monitors/{monitor_id}/edit")
async def edit(request: Request, monitor_id: IdPath, visit: Visitor, form: Posted, context: Context) -> Response:
    monitor = await owned.monitor(context.pool, visit.user.id, monitor_id, to_change=True)
    forms = _kind_forms()
    values = values_from(form, forms)
    fields = await validate(context, values, form, forms, base=monitor)
    if isinstance(fields, dict):
        return await _form_page(request, context, visit.user.id, values, forms, monitor=monitor, errors=fields)
    try:
        saved = await owned.update_monitor(context.pool, monitor, fields, notify=notify_of(values))
    except Invalid as invalid:
        return await _form_page(
            request, context, visit.user.id, values, forms, monitor=monitor, errors=_problems(invalid, forms)
        )
    await web_sessions.set_notice(context.pool, visit.token, f"Saved “{saved.name}”.")
    return RedirectResponse(f"/monitors/{monitor_id}", status_code=303)
