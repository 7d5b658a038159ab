"""Forms built from a model's fields (a channel's config, a monitor kind's options), and posted forms read back.

Every channel, built-in or plugin, gets its fields in the "Add integration"
dialog from its config fields (:func:`uptimed.channels.schema.config_fields`,
which also says which control asks for each key): adding a channel needs no
page code. Each field's form name is prefixed by the channel type
(``webhook.webhookUrl``), so the dialog holds one fieldset per type and only
the chosen type's fields are read.

Reading a form gives the raw config for the channel's model to validate; it
checks only what the form itself must (a number that is not one, a header
line without a colon), naming the field and the line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from uptimed.channels.registry import ChannelRegistry
from uptimed.channels.schema import ConfigField, Control, words
from uptimed.probe.kinds import KindRegistry
from uptimed.rules.errors import Problem, dotted

SUMMARY_LIMIT = 160

_MULTILINE = {"mapping", "list", "json", "textarea"}


@dataclass(frozen=True)
class Option:
    """One choice of a select: the text the form carries and the JSON value it stands for."""

    text: str
    value: Any


@dataclass(frozen=True)
class FormField:
    """One config key as a form control."""

    channel: str
    """The channel type (or monitor kind) whose form it is: the prefix of its name."""
    key: str
    label: str
    control: Control
    required: bool
    secret: bool
    help: str | None = None
    initial: str = ""
    """What the control shows before anything is entered (``"on"`` for a ticked box)."""
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    options: tuple[Option, ...] = ()

    @property
    def name(self) -> str:
        """The form field's name: ``webhook.webhookUrl``."""
        return f"{self.channel}.{self.key}"

    @property
    def input_id(self) -> str:
        return "field-" + _id_part(self.name)

    @property
    def help_id(self) -> str:
        return self.input_id + "-help"

    @property
    def error_id(self) -> str:
        """The id the ``field_error`` macro gives this field's error."""
        return self.name.replace(".", "-") + "-error"

    @property
    def step(self) -> str:
        return "1" if self.integer else "any"


@dataclass(frozen=True)
class ChannelForm:
    """The fields of one channel type, in the order its model declares them."""

    type: str
    title: str
    fields: tuple[FormField, ...]

    def field(self, key: str) -> FormField | None:
        return next((f for f in self.fields if f.key == key), None)


@dataclass(frozen=True)
class ReadConfig:
    """A posted form as the raw config to validate, and what the form itself got wrong."""

    config: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    """By form field name (``webhook.headers``): ``"line 2: expected Name: value"``."""


def channel_form(registry: ChannelRegistry, name: str) -> ChannelForm:
    """The form of channel ``name`` (:class:`~uptimed.channels.registry.UnknownChannelError` if none)."""
    fields = tuple(_form_field(name, item) for item in registry.config_fields(name))
    return ChannelForm(type=name, title=registry.title(name), fields=fields)


def channel_forms(registry: ChannelRegistry) -> list[ChannelForm]:
    """A form for every installed channel, by type name."""
    return [channel_form(registry, name) for name in registry.names()]


def kind_form(kinds: KindRegistry, name: str) -> ChannelForm:
    """The options of monitor kind ``name`` as a form, each field named ``<kind>.<option>`` (``dns.record``)."""
    fields = tuple(_form_field(name, item) for item in kinds.config_fields(name))
    return ChannelForm(type=name, title=kinds.title(name), fields=fields)


def kind_forms(kinds: KindRegistry) -> list[ChannelForm]:
    """A form for every installed kind, built-ins first."""
    return [kind_form(kinds, name) for name in kinds.names()]


def _form_field(channel: str, config: ConfigField) -> FormField:
    control: Control = config.control
    default = None if config.secret else config.default  # a secret's default is never shown
    if control == "select":
        initial = _initial(default)
    elif control == "checkbox":
        initial = "on" if default is True else ""
    elif control == "mapping":
        initial = _lines(default)
    elif control == "list":
        initial = "\n".join(map(str, default or []))
    elif control == "json":
        initial = "" if default is None else json.dumps(default)
    else:
        initial = _initial(default)
    return FormField(
        channel=channel,
        key=config.name,
        label=config.title,
        control=control,
        required=config.required,
        secret=config.secret,
        help=_sentence(config.description),
        initial=initial,
        integer=config.integer,
        minimum=config.minimum,
        maximum=config.maximum,
        max_length=config.max_length,
        options=tuple(Option(_text(v), v) for v in config.options),
    )


def _sentence(text: object) -> str | None:
    """A description as help text: ``"where to POST the event"`` -> ``"Where to POST the event."``."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    return text[0].upper() + text[1:] + ("" if text[-1] in ".!?" else ".")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _initial(value: Any) -> str:
    return "" if value is None else _text(value)


def _lines(value: Any) -> str:
    return "\n".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else ""


def _id_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def read_config(form: ChannelForm, posted: Mapping[str, Sequence[str]]) -> ReadConfig:
    """The config ``posted`` (a form's fields, each with its values) holds for ``form``'s channel.

    An empty field is left out, so the model's default applies (or the model
    says the field is required).
    """
    config: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in form.fields:
        values = posted.get(item.name) or []
        if item.control == "checkbox":
            config[item.key] = any(v != "" for v in values)
            continue
        text = values[-1] if values else ""
        if item.control not in _MULTILINE:
            text = text.strip()
        if not text.strip():
            continue
        try:
            config[item.key] = _read(item, text)
        except ValueError as exc:
            errors[item.name] = str(exc)
    return ReadConfig(config=config, errors=errors)


def _read(item: FormField, text: str) -> Any:
    if item.control == "number":
        return _number(text, integer=item.integer)
    if item.control == "select":
        for option in item.options:
            if option.text == text:
                return option.value
        raise ValueError("choose one of the listed options")
    if item.control == "mapping":
        return parse_lines(text)
    if item.control == "list":
        return [line.strip() for line in text.splitlines() if line.strip()]
    if item.control == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return text


def _number(text: str, *, integer: bool) -> int | float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ValueError("must be a whole number" if integer else "must be a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a number")
    return value


def parse_lines(text: str) -> dict[str, str]:
    """``Name: value`` lines as a dict; blank lines are skipped, a bad line is named by its number."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            raise ValueError(f"line {number}: expected “Name: value”")
        if name in found:
            raise ValueError(f"line {number}: “{name}” is given twice")
        found[name] = value.strip()
    return found


def entered(form: ChannelForm, posted: Mapping[str, Sequence[str]], *, secrets: bool = False) -> dict[str, str]:
    """What was typed into ``form``'s fields, to show again; secrets only with ``secrets`` (a new integration's)."""
    shown: dict[str, str] = {}
    for item in form.fields:
        if item.secret and not secrets:
            continue
        values = posted.get(item.name) or []
        if item.control == "checkbox":
            shown[item.name] = "on" if any(v != "" for v in values) else ""
        else:
            shown[item.name] = values[-1] if values else ""
    return shown


def stored_values(form: ChannelForm, config: Mapping[str, Any]) -> dict[str, str]:
    """A stored config as ``form``'s values, to edit it; secrets stay empty (kept unless a new one is typed)."""
    values: dict[str, str] = {}
    for item in form.fields:
        if item.secret or item.key not in config:
            continue
        value = config[item.key]
        if item.control == "checkbox":
            values[item.name] = "on" if value else ""
        elif item.control == "mapping":
            values[item.name] = _lines(value)
        elif item.control == "list":
            values[item.name] = "\n".join(map(_text, value or []))
        elif item.control == "json":
            values[item.name] = "" if value is None else json.dumps(value)
        elif item.control == "select":
            values[item.name] = next((o.text for o in item.options if o.value == value), "")
        else:
            values[item.name] = _initial(value)
    return values


def initial_values(forms: Iterable[ChannelForm]) -> dict[str, str]:
    """Every field's starting value, by form field name."""
    return {item.name: item.initial for form in forms for item in form.fields}


def field_errors(form: ChannelForm, problems: Iterable[Problem]) -> dict[str, str]:
    """The channel model's complaints by form field name; one about no single field is keyed by the type."""
    errors: dict[str, str] = {}
    for problem in problems:
        loc = problem.loc[1:] if problem.loc[:1] == ("config",) else problem.loc
        item = form.field(loc[0]) if loc and isinstance(loc[0], str) else None
        message = "is required" if problem.type == "missing" else problem.msg
        if item is None:
            errors.setdefault(form.type, f"{dotted(loc)}: {message}" if loc else message)
        else:
            inner = dotted(loc[1:])
            errors.setdefault(item.name, f"{inner}: {message}" if inner else message)
    return errors


def summary(form: ChannelForm | None, config: Mapping[str, Any]) -> str:
    """One line about a config already masked (``masked()``): ``"Webhook URL: …hook · Timeout: 10"``."""
    parts: list[str] = []
    # In the order the form asks (the database keeps JSON keys in an order of its own).
    declared = [item.key for item in form.fields] if form else []
    keys = [k for k in declared if k in config] + sorted(k for k in config if k not in declared)
    for key in keys:
        value = config[key]
        if value is None or value is False or value == {} or value == [] or value == "":
            continue
        item = form.field(key) if form else None
        label = item.label if item else words(key)
        if value is True:
            parts.append(label)
        elif isinstance(value, dict):
            parts.append(f"{label}: {', '.join(sorted(map(str, value)))}")  # names only: the values may be secrets
        elif isinstance(value, list):
            parts.append(f"{label}: {', '.join(map(_text, value))}")
        else:
            parts.append(f"{label}: {_text(value)}")
    text = " · ".join(parts)
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"
