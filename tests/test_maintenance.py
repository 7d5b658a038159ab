"""Maintenance windows: their fields, and when they are on (pure: no services, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from pydantic import ValidationError

from uptimed.channels.registry import default_registry
from uptimed.config import ConfigError, parse_settings
from uptimed.maintenance import MaintenanceIn, MaintenanceSpec, Occurrence, upcoming
from uptimed.rules.declared import sync
from uptimed.rules.errors import problems_of

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def window(**fields: object) -> MaintenanceIn:
    return MaintenanceIn.model_validate({"name": "w", "all_monitors": True, **fields})


def problems(**fields: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        window(**fields)
    return {".".join(map(str, p.loc or p.about)): p.msg for p in problems_of(caught.value)}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_a_one_off_window_is_on_from_its_start_until_its_end() -> None:
    w = window(start="2025-06-01T02:00:00+02:00", end="2025-06-01T04:00:00+02:00")
    assert not w.recurring
    assert w.schedule.covering(utc(2025, 5, 31, 23, 59)) is None
    assert w.schedule.covering(utc(2025, 6, 1, 0, 0)) == Occurrence(utc(2025, 6, 1, 0, 0), utc(2025, 6, 1, 2, 0))
    assert w.schedule.covering(utc(2025, 6, 1, 1, 59, 59)) is not None
    assert w.schedule.covering(utc(2025, 6, 1, 2, 0)) is None  # the end is not inside
    assert w.schedule.next_after(utc(2025, 5, 1)) == Occurrence(utc(2025, 6, 1, 0, 0), utc(2025, 6, 1, 2, 0))
    assert w.schedule.next_after(utc(2025, 6, 1, 1)) is None


def test_a_one_off_window_without_offsets_is_read_in_its_time_zone() -> None:
    w = window(start="2025-06-01T02:00:00", end="2025-06-01T04:00:00", time_zone="Europe/Berlin")
    assert w.start == datetime(2025, 6, 1, 2, tzinfo=BERLIN)
    assert w.schedule.covering(utc(2025, 6, 1, 0, 30)) is not None
    assert w.describe() == "2025-06-01 02:00 to 04:00 (Europe/Berlin)"


def test_a_weekly_window_starts_at_the_same_local_time_across_the_spring_change() -> None:
    # Europe/Berlin moves from UTC+1 to UTC+2 on Sunday 2025-03-30.
    w = window(days=["sun"], at="01:00", duration="2h", time_zone="Europe/Berlin")
    before = w.schedule.next_after(utc(2025, 3, 22))
    after = w.schedule.next_after(utc(2025, 3, 24))
    assert before == Occurrence(utc(2025, 3, 23, 0, 0), utc(2025, 3, 23, 2, 0))  # 01:00 CET
    assert after is not None and after.start.astimezone(BERLIN).time() == time(1, 0)
    assert after == Occurrence(utc(2025, 3, 30, 0, 0), utc(2025, 3, 30, 2, 0))  # 01:00 CET, lasting 2 real hours
    following = w.schedule.next_after(utc(2025, 3, 31))
    assert following == Occurrence(utc(2025, 4, 5, 23, 0), utc(2025, 4, 6, 1, 0))  # 01:00 CEST
    assert w.schedule.covering(utc(2025, 4, 5, 23, 30)) == following
    assert w.schedule.covering(utc(2025, 4, 6, 0, 30)) == following
    assert w.schedule.covering(utc(2025, 4, 6, 1, 0)) is None
    assert w.schedule.covering(utc(2025, 4, 5, 22, 59)) is None


def test_a_start_in_the_skipped_hour_begins_when_the_hour_ends() -> None:
    w = window(days=["sun"], at="02:30", duration="1h", time_zone="Europe/Berlin")
    assert w.schedule.next_after(utc(2025, 3, 29)) == Occurrence(utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 2, 0))


def test_a_start_in_the_repeated_hour_begins_the_first_time() -> None:
    w = window(cron="30 1 * * *", duration="30m", time_zone="America/New_York")
    # 2025-11-02 01:30 happens twice in New York (EDT, then EST): the first one counts.
    found = w.schedule.next_after(utc(2025, 11, 2, 0))
    assert found == Occurrence(utc(2025, 11, 2, 5, 30), utc(2025, 11, 2, 6, 0))
    assert w.schedule.covering(utc(2025, 11, 2, 6, 40)) is None  # the second 01:30 local is not a start


def test_a_cron_window_across_the_autumn_change_keeps_local_time() -> None:
    w = window(cron="0 22 * * fri", duration="4h", time_zone="America/New_York")
    assert w.schedule.next_after(utc(2025, 10, 30)) == Occurrence(utc(2025, 11, 1, 2, 0), utc(2025, 11, 1, 6, 0))  # EDT
    assert w.schedule.next_after(utc(2025, 11, 2)) == Occurrence(utc(2025, 11, 8, 3, 0), utc(2025, 11, 8, 7, 0))  # EST
    assert w.describe() == "cron “0 22 * * fri” for 4h (America/New_York)"


def test_overlapping_occurrences_are_one() -> None:
    w = window(cron="0 * * * *", duration="90m")
    on = w.schedule.covering(utc(2025, 1, 1, 12, 10))
    assert on is not None  # always on: merged as far as the limit, far beyond the next start
    assert on.start <= utc(2025, 1, 1, 11) and on.end >= utc(2025, 1, 1, 14, 30)
    two = window(cron="0 10,11 * * *", duration="90m")
    assert two.schedule.covering(utc(2025, 1, 1, 11, 45)) == Occurrence(utc(2025, 1, 1, 10), utc(2025, 1, 1, 12, 30))


def test_upcoming_is_the_next_start_within_a_horizon() -> None:
    w = window(days=["mon", "thu"], at="03:00", duration="1h")
    assert upcoming(w, utc(2025, 1, 1, 12), timedelta(days=1)) == Occurrence(
        utc(2025, 1, 2, 3), utc(2025, 1, 2, 4)
    )  # 2025-01-02 is a Thursday
    assert upcoming(w, utc(2025, 1, 2, 5), timedelta(days=1)) is None
    assert w.describe() == "Mon, Thu 03:00 for 1h (UTC)"


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        ({}, "start", "give start and end (one-off), or cron or days with a duration (recurring)"),
        ({"start": "2025-01-01T00:00:00Z"}, "end", "a one-off window needs both start and end"),
        ({"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "end", "end must be after start"),
        (
            {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z", "duration": "1h"},
            "start",
            "a window is either one-off (start and end) or recurring (cron or days, duration)",
        ),
        ({"cron": "0 2 * * *"}, "duration", "a recurring window needs a duration, e.g. '2h'"),
        ({"days": ["sun"], "duration": "1h"}, "at", "a weekly window needs days and the time it starts (at)"),
        ({"cron": "0 2 * *", "duration": "1h"}, "cron", "needs 5 fields: minute hour day-of-month month day-of-week"),
        ({"cron": "61 2 * * *", "duration": "1h"}, "cron", "is not a cron expression: bad minute"),
        ({"cron": "0 2 * * *", "duration": "10s"}, "duration", "must be between 1 minute and 31 days"),
        ({"cron": "0 2 * * *", "duration": "1h", "time_zone": "Mars/Olympus"}, "time_zone", ""),
        ({"days": ["sunday"], "at": "02:00", "duration": "1h"}, "days.0", ""),
    ],
)
def test_what_is_refused_is_named(fields: dict[str, object], where: str, message: str) -> None:
    found = problems(**fields)
    assert where in found, found
    assert message in found[where]


def test_a_window_chooses_its_monitors() -> None:
    with pytest.raises(ValidationError) as caught:
        MaintenanceIn.model_validate({"name": "w", "cron": "0 2 * * *", "duration": "1h"})
    assert [p.msg for p in problems_of(caught.value)] == [
        "choose the monitors: all of them, some by name, or those with a tag"
    ]
    spec = MaintenanceSpec.model_validate(
        {"owner": "alice", "name": "db", "cron": "0 2 * * *", "duration": "1h", "monitors": ["shop"]}
    )
    assert spec.stable_key == "db"
    chosen = window(cron="0 2 * * *", duration="1h", all_monitors=False, tags=["eu"])
    assert chosen.tags == ["eu"]


CONFIG = """
[[monitors]]
owner = "alice"
name = "db"
target = "db.example:5432"
kind = "tcp"
tags = ["db"]

[[maintenance]]
owner = "alice"
name = "backups"
days = ["sun"]
at = 02:00:00
duration = "90m"
time_zone = "Europe/Berlin"
monitors = ["db"]
"""


def test_the_config_file_declares_windows_naming_its_monitors_by_key() -> None:
    settings = parse_settings(CONFIG)
    [window] = settings.maintenance
    assert (window.owner, window.stable_key, window.monitors) == ("alice", "backups", ["db"])
    with pytest.raises(ConfigError) as caught:
        parse_settings(CONFIG.replace('monitors = ["db"]', 'monitors = ["shop"]'))
    assert [p.render(Path("u.toml")) for p in caught.value.problems] == [
        "u.toml:16: maintenance[0].monitors: 'alice' has no monitor with key 'shop' in this file"
    ]
    with pytest.raises(ConfigError) as caught:
        parse_settings(CONFIG.replace('duration = "90m"', 'duration = "5s"'))
    assert "maintenance[0]: must be between 1 minute and 31 days" in str(caught.value)


async def test_windows_from_the_file_are_synced_changed_and_removed(pool: asyncpg.Pool) -> None:
    registry = default_registry()
    await sync(pool, parse_settings(CONFIG), registry)
    [stored] = await pool.fetch("SELECT * FROM maintenance_windows")
    db = await pool.fetchval("SELECT id FROM monitors WHERE name = 'db'")
    assert (stored["config_key"], list(stored["monitor_ids"]), stored["duration_s"]) == ("backups", [db], 5400)
    await sync(pool, parse_settings(CONFIG.replace('"90m"', '"2h"')), registry)
    assert await pool.fetchval("SELECT duration_s FROM maintenance_windows WHERE id = $1", stored["id"]) == 7200
    await sync(pool, parse_settings(CONFIG[: CONFIG.index("[[maintenance]]")]), registry)
    assert await pool.fetchval("SELECT count(*) FROM maintenance_windows") == 0
