"""The region and quorum rule: which regions check a monitor, and how many of them must agree.

One home for the rule, used by the config file, the API, the pages and the
state machine alike. Imports no service, web or store code, so the
evaluator can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from uptimed.rules.errors import Problem

if TYPE_CHECKING:
    from uptimed.monitor import MonitorFields


def quorum_for(monitor: MonitorFields, regions: Sequence[str]) -> int:
    """How many of ``regions`` must agree: ``monitor.quorum`` capped at their number, else a majority."""
    count = len(regions)
    if monitor.quorum:
        return max(1, min(monitor.quorum, count))
    return count // 2 + 1


def region_problems(monitor: MonitorFields, configured: Sequence[str]) -> list[Problem]:
    """What ``monitor`` asks of the cluster's ``configured`` regions that they cannot give.

    A region the cluster does not have, or a quorum larger than the regions
    the monitor is checked from (its own, or all configured ones).
    """
    unknown = [r for r in monitor.regions if r not in configured]
    if unknown:
        return [Problem(("regions",), f"unknown region {unknown[0]!r}; configured: {', '.join(configured)}")]
    count = len(monitor.effective_regions(list(configured)))
    if monitor.quorum is not None and monitor.quorum > count:
        return [Problem(("quorum",), f"quorum {monitor.quorum} is more than its {count} regions")]
    return []
