"""A monitor's kind options beyond what their model checks: their secrets kept across edits.

A kind's secrets (a database password) never leave in clear: the API masks
them as integrations' are masked (``…`` plus the last four characters, see
``MonitorFields``' JSON form), and an edit that leaves one out, or sends back
its masked form, keeps the stored one (:func:`keep_secrets`), through the
API and the pages alike.
"""

from __future__ import annotations

from pydantic import BaseModel, SecretBytes, SecretStr

from uptimed.channels.registry import redact_secret
from uptimed.channels.schema import config_fields
from uptimed.monitor import Monitor, MonitorFields


def keep_secrets(stored: Monitor, new: MonitorFields) -> MonitorFields:
    """``new`` with each secret of its kinds' options that it leaves out, or sends back masked, taken from ``stored``.

    A secret sent as ``null`` on purpose is removed.
    """
    updates: dict[str, BaseModel] = {}
    for kind, options in new.kind_options().items():
        before = stored.options_for(kind)
        if not isinstance(options, BaseModel) or before is None or type(before) is not type(options):
            continue
        kept: dict[str, object] = {}
        for field in config_fields(type(options)):
            if not field.secret:
                continue
            old, value = getattr(before, field.name, None), getattr(options, field.name, None)
            if old is None or (value is None and field.name in options.model_fields_set):
                continue
            if value is None or _reveal(value) == redact_secret(_reveal(old)):
                kept[field.name] = old
        if kept:
            updates[kind] = options.model_copy(update=kept)
    return new.model_copy(update=updates) if updates else new


def _reveal(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode(errors="replace")
    return str(value)
