"""A monitor's fields checked against this cluster: the rules its model alone cannot apply.

The model (:class:`~uptimed.monitor.MonitorFields`) checks every value on
its own and is applied wherever a monitor comes from, stored rows included.
What depends on the cluster, or bounds what users may ask for, is checked
here on the way in, from the config file, the API and the pages alike:
regions and quorum (:mod:`uptimed.rules.regions`) and how rarely a reminder
may go out. Imports no store, channel or web code: config.py uses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from uptimed.monitor import MonitorFields
from uptimed.rules.errors import Invalid, Problem, problems_of
from uptimed.rules.regions import region_problems

MAX_REPEAT_INTERVAL_S = 30 * 86400.0
"""Reminders while down go out at least once a month; a longer interval is refused (file, API and pages)."""


def problems(fields: MonitorFields, configured_regions: Sequence[str]) -> list[Problem]:
    """Everything wrong with ``fields`` in a cluster of ``configured_regions``, in the order of the fields."""
    found = region_problems(fields, configured_regions)
    if fields.repeat_interval is not None and fields.repeat_interval > MAX_REPEAT_INTERVAL_S:
        found.append(Problem(("repeat_interval",), "must be at most 30 days"))
    return found


def checked(fields: MonitorFields, configured_regions: Sequence[str]) -> MonitorFields:
    """``fields`` unchanged, or :class:`~uptimed.rules.errors.Invalid` naming each problem."""
    found = problems(fields, configured_regions)
    if found:
        raise Invalid(found)
    return fields


def validated(data: Mapping[str, Any], configured_regions: Sequence[str]) -> MonitorFields:
    """``data`` (a form's values, say) as monitor fields, checked; :class:`Invalid` with every problem's location."""
    try:
        fields = MonitorFields.model_validate(dict(data))
    except ValidationError as exc:
        raise Invalid(problems_of(exc)) from None
    return checked(fields, configured_regions)
