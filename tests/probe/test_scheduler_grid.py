"""The scheduler's grid: checks on fixed points, spread evenly, never drifting."""

from __future__ import annotations

from collections import Counter

import pytest

from uptimed.monitor import Monitor
from uptimed.probe.scheduler import next_due, phase_of


def monitor(mid: int, interval: float = 60.0) -> Monitor:
    return Monitor(id=mid, owner_id=1, name=f"m{mid}", target="http://x/", interval=interval, timeout=min(5, interval))


def test_ten_thousand_monitors_at_60s_do_not_fire_in_one_burst() -> None:
    per_second = Counter(int(phase_of(mid, 60.0)) for mid in range(1, 10_001))
    assert len(per_second) == 60
    # An even spread is ~167 a second; allow a little unevenness, never a burst.
    assert max(per_second.values()) < 200 and min(per_second.values()) > 130


@pytest.mark.parametrize("interval", [1.0, 7.5, 60.0, 3600.0])
def test_due_times_stay_on_the_grid_whatever_a_check_took(interval: float) -> None:
    m = monitor(42, interval)
    first = next_due(m, 1_700_000_000.0)
    assert 1_700_000_000.0 <= first < 1_700_000_000.0 + interval
    # However late "now" is when the next due time is asked for, the answer is a grid point.
    for late in (0.001, 0.4 * interval, 0.999 * interval):
        following = next_due(m, first + late)
        assert (following - first) / interval == pytest.approx(round((following - first) / interval))
        assert following == pytest.approx(first + interval)
    assert next_due(m, first) == pytest.approx(first)


def test_phase_is_stable_so_a_new_leader_keeps_the_same_grid() -> None:
    assert phase_of(7, 60.0) == phase_of(7, 60.0)
    assert next_due(monitor(7), 1_000.0) == next_due(monitor(7), 1_000.0)
