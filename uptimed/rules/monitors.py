"""A monitor's fields checked at the door: the rules its model alone does not apply.

The model (:class:`~uptimed.monitor.MonitorFields`) checks every value on
its own and is applied wherever a monitor comes from, stored rows included.
What depends on the cluster, bounds what users may ask for, or became
stricter after monitors were stored, is checked here on the way in, from the
config file, the API and the pages alike: regions and quorum
(:mod:`uptimed.rules.regions`), how rarely a reminder may go out, and the
form of every value (:func:`door_problems`: no control characters, ports
from 1 to 65535, status ranges that make sense, names that are not blank,
header names and values HTTP allows). A row stored before a check existed
still loads. Imports no store, channel or web code: config.py uses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from uptimed.monitor import MonitorFields
from uptimed.rules.errors import Invalid, Problem, problems_of
from uptimed.rules.regions import region_problems

MAX_REPEAT_INTERVAL_S = 30 * 86400.0
"""Reminders while down go out at least once a month; a longer interval is refused (file, API and pages)."""
MAX_HEADERS = 50
MAX_HEADER_VALUE = 8192

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")  # an HTTP token (RFC 9110)
_NO_CONTROL = "may not contain control characters (line breaks, tabs, NUL)"


def problems(fields: MonitorFields, configured_regions: Sequence[str]) -> list[Problem]:
    """Everything wrong with ``fields`` in a cluster of ``configured_regions``, in the order of the fields."""
    found = door_problems(fields) + region_problems(fields, configured_regions)
    if fields.repeat_interval is not None and fields.repeat_interval > MAX_REPEAT_INTERVAL_S:
        found.append(Problem(("repeat_interval",), "must be at most 30 days"))
    return found


def door_problems(fields: MonitorFields) -> list[Problem]:
    """The form of each value, each problem at its field; never repeating the value (a target may hold a password)."""
    found: list[Problem] = []
    if not fields.name.strip():
        found.append(Problem(("name",), "must not be blank", "blank"))
    elif _CONTROL.search(fields.name):
        found.append(Problem(("name",), _NO_CONTROL, "control_characters"))
    # A blank target is the kind's to judge (a heartbeat has none): MonitorFields asks it.
    if _CONTROL.search(fields.target):
        found.append(Problem(("target",), _NO_CONTROL, "control_characters"))
    elif fields.kind == "http":
        if " " in fields.target:
            found.append(Problem(("target",), "a URL may not contain spaces (write them as %20)"))
        try:
            port = urlsplit(fields.target).port
        except ValueError:
            port = -1
        if port is not None and not 0 < port < 65536:
            found.append(Problem(("target",), "the URL's port must be a number from 1 to 65535"))
    http = fields.http
    if len(http.headers) > MAX_HEADERS:
        found.append(Problem(("http", "headers"), f"at most {MAX_HEADERS} headers"))
    for name, value in http.headers.items():
        if not _HEADER_NAME.fullmatch(name):
            found.append(Problem(("http", "headers"), "a header name is letters, digits and !#$%&'*+.^_`|~-"))
        elif len(value) > MAX_HEADER_VALUE or _CONTROL.search(value.replace("\t", "")):
            found.append(
                Problem(("http", "headers"), f"the value of {name} {_NO_CONTROL} and has at most {MAX_HEADER_VALUE}")
            )
    for accepted in http.accepted_statuses:
        if not (100 <= accepted.low <= 599 and 100 <= accepted.high <= 599):
            found.append(Problem(("http", "accepted_statuses"), "a status code is from 100 to 599"))
        elif accepted.high < accepted.low:
            found.append(Problem(("http", "accepted_statuses"), f"status range {accepted} ends before it starts"))
    for option in ("keyword", "keyword_absent", "json_path"):
        value = getattr(http, option)
        if value is not None and _CONTROL.search(value):
            found.append(Problem(("http", option), _NO_CONTROL, "control_characters"))
    return found


def checked(fields: MonitorFields, configured_regions: Sequence[str]) -> MonitorFields:
    """``fields`` with its name and target trimmed, or :class:`~uptimed.rules.errors.Invalid` naming each problem."""
    found = problems(fields, configured_regions)
    if found:
        raise Invalid(found)
    name, target = fields.name.strip(), fields.target.strip()
    if (name, target) == (fields.name, fields.target):
        return fields
    return fields.model_copy(update={"name": name, "target": target})


def validated(data: Mapping[str, Any], configured_regions: Sequence[str]) -> MonitorFields:
    """``data`` (a form's values, say) as monitor fields, checked; :class:`Invalid` with every problem's location."""
    try:
        fields = MonitorFields.model_validate(dict(data))
    except ValidationError as exc:
        raise Invalid(problems_of(exc)) from None
    return checked(fields, configured_regions)
