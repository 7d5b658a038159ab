"""A channel's config, read once from its model: each key's type, whether it is secret, and how a form asks for it.

``uptimed channels``, ``GET /api/v1/channels``, the API's secret keeping and
the pages' forms all take a channel's keys from :func:`config_fields`, so
they agree on which keys are secret and what each one holds. Everything
comes from the channel's own pydantic ``config_model`` (its JSON schema):
a channel, built in or a plugin, needs no other code to be listed, shown or
edited.

How a key becomes a form control:

- a string: a text input; a secret (``format: password``) a password input
- an integer or number: a number input, bounded by ``minimum`` / ``maximum``
- a boolean: a checkbox
- an enum: a select of its values
- an object of strings (webhook headers): a textarea of ``Name: value`` lines
- an array of strings: a textarea, one item a line
- a choice of scalars (``int | str``, Telegram's chatId): a text input
- anything else: a textarea of JSON

A model may choose the control itself with ``"x-control"`` in a field's JSON
schema: ``"textarea"`` for long text (a PEM certificate), ``"list"`` for a
list whose items are written as strings (``"200-299"`` for a status range).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

import pydantic_core
from pydantic import BaseModel, SecretBytes, SecretStr

Control = Literal["text", "textarea", "password", "number", "checkbox", "select", "mapping", "list", "json"]
_CHOSEN: tuple[Control, ...] = ("textarea", "list", "text", "json")

_ACRONYMS = {
    "api",
    "id",
    "ip",
    "url",
    "uri",
    "http",
    "https",
    "smtp",
    "tls",
    "ssl",
    "dns",
    "sms",
    "json",
    "ca",
    "starttls",
}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SCALARS = {"string", "integer", "number", "boolean"}


@dataclass(frozen=True)
class ConfigField:
    """One key of a channel's config: for listings, the API's secret keeping and forms."""

    name: str
    """The key as the config JSON has it (the model's alias): ``webhookUrl``."""
    type: str
    """For people: ``string``, ``array of string``, ``'eu' | 'us'``."""
    required: bool
    secret: bool
    default: Any = None
    description: str | None = None
    title: str = ""
    """The label: the model's ``title`` when it set one, else the key in words (``Webhook URL``)."""
    control: Control = "json"
    options: tuple[Any, ...] = ()
    """A select's values, in the model's order."""
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None


def config_fields(model: type[BaseModel]) -> list[ConfigField]:
    """The keys of ``model``, in declaration order."""
    schema = model.model_json_schema(by_alias=True)
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    fields: list[ConfigField] = []
    for key, info in model.model_fields.items():
        alias = info.alias or key
        prop = properties.get(alias, {})
        secret = _is_secret(prop, schema)
        default = None if info.is_required() else _jsonable_default(info)
        fields.append(
            ConfigField(
                name=alias,
                type=_type_name(prop, schema),
                required=alias in required,
                secret=secret,
                default=default,
                description=info.description,
                title=_title(alias, prop),
                **_control(_chosen(prop, schema), schema, secret=secret),
            )
        )
    return fields


def words(name: str) -> str:
    """A key or a type name in words: ``webhookUrl`` -> ``"Webhook URL"``, ``pager_duty`` -> ``"Pager duty"``."""
    found: list[str] = [w.upper() if w.lower() in _ACRONYMS else w.lower() for w in _WORD.findall(name)] or [name]
    return found[0][:1].upper() + found[0][1:] + "".join(f" {w}" for w in found[1:])


def _title(key: str, prop: dict[str, Any]) -> str:
    # pydantic titles every property after its key ("On Call Team"); only a title the model chose counts.
    title = prop.get("title")
    if isinstance(title, str) and title and title != key.title().replace("_", " "):
        return title
    return words(key)


def _control(scalar: dict[str, Any], schema: dict[str, Any], *, secret: bool) -> dict[str, Any]:
    kind = scalar.get("type")
    chosen = scalar.get("x-control")
    if chosen in _CHOSEN and not secret:
        return {"control": chosen, "max_length": scalar.get("maxLength")}
    if "enum" in scalar or "const" in scalar:
        return {"control": "select", "options": tuple(scalar.get("enum", [scalar.get("const")]))}
    if kind == "boolean":
        return {"control": "checkbox"}
    if kind in ("integer", "number"):
        return {
            "control": "number",
            "integer": kind == "integer",
            "minimum": scalar.get("minimum"),
            "maximum": scalar.get("maximum"),
        }
    if kind == "string":
        return {"control": "password" if secret else "text", "max_length": scalar.get("maxLength")}
    if kind == "scalars":
        return {"control": "text"}
    if kind == "object" and _type_of(scalar.get("additionalProperties"), schema) == "string":
        return {"control": "mapping"}
    if kind == "array" and _type_of(scalar.get("items"), schema) == "string":
        return {"control": "list"}
    return {"control": "json"}


def _chosen(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The property's scalar, keeping a control the model chose on the property itself (``str | None``)."""
    scalar = _scalar(prop, schema)
    return {**scalar, "x-control": prop["x-control"]} if "x-control" in prop else scalar


def _resolve(prop: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """``prop`` with a ``$ref`` to ``$defs`` replaced by its target (the property's own keys kept)."""
    if not isinstance(prop, dict):
        return {}
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = schema.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
        return {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    return prop


def _scalar(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The property without its ``null`` alternative; ``{"type": "scalars"}`` for ``int | str`` and kin."""
    prop = _resolve(prop, schema)
    variants = prop.get("anyOf") or prop.get("oneOf")
    if not variants:
        if len(prop.get("allOf", [])) == 1:
            return _resolve(prop["allOf"][0], schema)
        return prop
    kept = [_resolve(v, schema) for v in variants if _resolve(v, schema).get("type") != "null"]
    if len(kept) == 1:
        return kept[0]
    kinds = {v.get("type") for v in kept}
    if kinds <= {"integer", "number"}:
        return {"type": "integer" if kinds == {"integer"} else "number"}
    if kinds <= _SCALARS and not any("enum" in v or "const" in v for v in kept):
        return {"type": "scalars"}
    return {}


def _type_of(prop: Any, schema: dict[str, Any]) -> str | None:
    return _scalar(prop, schema).get("type") if isinstance(prop, dict) else None


def _is_secret(prop: dict[str, Any], schema: dict[str, Any]) -> bool:
    prop = _resolve(prop, schema)
    if prop.get("format") == "password" or prop.get("writeOnly") is True:
        return True
    nested = [*prop.get("anyOf", []), *prop.get("allOf", [])]
    if isinstance(prop.get("additionalProperties"), dict):
        nested.append(prop["additionalProperties"])
    if isinstance(prop.get("items"), dict):
        nested.append(prop["items"])
    return any(_is_secret(p, schema) for p in nested)


def _type_name(prop: dict[str, Any], schema: dict[str, Any]) -> str:
    prop = _resolve(prop, schema)
    if "type" in prop:
        kind = prop["type"]
        if kind == "array" and isinstance(prop.get("items"), dict):
            return f"array of {_type_name(prop['items'], schema)}"
        if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
            return f"object of {_type_name(prop['additionalProperties'], schema)}"
        return str(kind)
    if "enum" in prop:
        return " | ".join(map(repr, prop["enum"]))
    if "anyOf" in prop:
        return " | ".join(_type_name(p, schema) for p in prop["anyOf"])
    return "any"


def _jsonable_default(info: Any) -> Any:
    value = info.get_default(call_default_factory=True)
    if isinstance(value, SecretStr | SecretBytes):
        return None
    try:
        return pydantic_core.to_jsonable_python(value)
    except pydantic_core.PydanticSerializationError:
        return repr(value)


_FRAGMENT_MIN = 8
"""Parts of a secret URL this long or longer (a path segment, a query value) are secrets of their own."""


def secret_values(config: BaseModel) -> list[str]:
    """Every secret of a channel's config (its ``Secret`` fields), in clear, and the forms a service may echo.

    An error text scrubbed of these (``uptimed.channels.base.scrub``) holds none of them: beside each
    value, its percent-encoded and JSON-escaped forms, and for a URL its path, its long path segments
    and query values and its password, since a service that quotes a request often quotes only a part.
    """
    found: list[str] = []
    stack: list[Any] = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, SecretStr | SecretBytes):
            raw = value.get_secret_value()
            found += _echoes(raw.decode(errors="replace") if isinstance(raw, bytes) else raw)
        elif isinstance(value, BaseModel):
            stack += [getattr(value, name) for name in type(value).model_fields]
        elif isinstance(value, dict):
            stack += list(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            stack += list(value)
    return list(dict.fromkeys(s for s in found if s))


def _echoes(secret: str) -> list[str]:
    parts = [secret]
    if "://" in secret:
        try:
            url = urlsplit(secret)
            parts += [url.password or "", url.path if len(url.path) >= _FRAGMENT_MIN else "", url.query]
            parts += [segment for segment in url.path.split("/") if len(segment) >= _FRAGMENT_MIN]
            parts += [v for _, v in parse_qsl(url.query) if len(v) >= _FRAGMENT_MIN]
        except ValueError:
            pass
    forms: list[str] = []
    for part in parts:
        forms += [part, quote(part, safe=""), quote(part), json.dumps(part)[1:-1], part.replace("/", "\\/")]
    return forms
