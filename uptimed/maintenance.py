"""What a maintenance window is, and when it is on.

A window is planned work on some of a user's monitors: during it checks
still run and are stored, but no down, up or reminder goes out, and uptime
leaves those checks out; a monitor still down when it ends is alerted then,
once (:mod:`uptimed.evaluate.maintenance`).

A window is one-off (``start`` and ``end``) or recurring: a cron expression
(``cron = "0 2 * * sun"``) or weekly ``days`` at a local time ``at``, each
lasting ``duration``. Every time is read in the window's ``time_zone``, so
"Sundays at 02:00 in Europe/Berlin" starts at 02:00 local time on both sides
of a daylight-saving change (a start in the hour the clocks skip begins when
that hour ends, as cron does; one in the hour they repeat begins the first
time). It covers chosen monitors, monitors with any of some tags, or all of
its owner's monitors.

The same models read a ``[[maintenance]]`` table of the config file, a
window sent to the API or the pages, and a stored row, so a value refused in
one place is refused everywhere with the same message.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal, Self

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from uptimed.durations import Duration, format_duration
from uptimed.monitor import Tag
from uptimed.rules.errors import Across

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MIN_DURATION_S = 60.0
MAX_DURATION_S = 31 * 86400.0
"""A recurring window lasts at least a minute and at most 31 days."""
_MERGE_LIMIT = 100
"""Overlapping occurrences merged into one at most (an every-minute cron lasting a day is 1,440)."""


class MaintenanceFields(BaseModel):
    """The fields a window has wherever it comes from, except how it names its monitors."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    start: datetime | None = Field(
        None, description="a one-off window: when it starts; without an offset, in time_zone"
    )
    end: datetime | None = Field(None, description="a one-off window: when it ends; without an offset, in time_zone")
    cron: str | None = Field(
        None, max_length=200, description="a recurring window: when each one starts (5 cron fields, in time_zone)"
    )
    days: list[Weekday] = Field(
        default_factory=list, max_length=7, description="a weekly window: the days it starts on (mon ... sun)"
    )
    at: time | None = Field(None, description="a weekly window: the local time it starts at, e.g. '02:00'")
    duration: Duration | None = Field(None, description="a recurring window: how long each one lasts ('2h', '90m')")
    time_zone: str = Field("UTC", max_length=64, description="an IANA time zone, e.g. 'Europe/Berlin'")
    tags: list[Tag] = Field(default_factory=list, max_length=20, description="monitors with any of these tags")
    all_monitors: bool = Field(False, description="every monitor of the owner, present and future")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone_of(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if len(value.split(" ")) != 5:
            raise ValueError("needs 5 fields: minute hour day-of-month month day-of-week")
        try:
            CronSim(value, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise ValueError(f"is not a cron expression: {str(exc).lower()}") from None
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[Weekday]) -> list[Weekday]:
        return sorted(set(value), key=WEEKDAYS.index)

    @field_validator("at")
    @classmethod
    def _at(cls, value: time | None) -> time | None:
        if value is not None and (value.second or value.microsecond or value.tzinfo):
            raise ValueError("give hours and minutes only, e.g. '02:30' (the window's time_zone says where)")
        return value

    @model_validator(mode="after")
    def _schedule(self) -> Self:
        recurring = self.cron is not None or self.days or self.at is not None or self.duration is not None
        if self.start is not None or self.end is not None:
            if recurring:
                raise Across(
                    "start", "a window is either one-off (start and end) or recurring (cron or days, duration)"
                )
            if self.start is None or self.end is None:
                raise Across("end" if self.end is None else "start", "a one-off window needs both start and end")
            zone = zone_of(self.time_zone)
            start, end = _aware(self.start, zone), _aware(self.end, zone)
            if end <= start:
                raise Across("end", "end must be after start")
            if start is self.start and end is self.end:
                return self
            return self.model_copy(update={"start": start, "end": end})  # a copy: stored windows are frozen
        if not recurring:
            raise Across("start", "give start and end (one-off), or cron or days with a duration (recurring)")
        if self.cron is not None and (self.days or self.at is not None):
            raise Across("cron", "give either cron, or days and at, not both")
        if self.cron is None and not (self.days and self.at is not None):
            raise Across("days" if not self.days else "at", "a weekly window needs days and the time it starts (at)")
        if self.duration is None:
            raise Across("duration", "a recurring window needs a duration, e.g. '2h'")
        if not MIN_DURATION_S <= self.duration <= MAX_DURATION_S:
            raise Across("duration", "must be between 1 minute and 31 days")
        return self

    @property
    def recurring(self) -> bool:
        return self.start is None

    @property
    def schedule(self) -> Schedule:
        return Schedule.of(self)

    def describe(self) -> str:
        """When it is on, in words: ``"Sun 02:00 for 2h (Europe/Berlin)"``, ``"2025-06-01 02:00 to 04:00 (UTC)"``."""
        zone = f" ({self.time_zone})"
        if self.start is not None and self.end is not None:
            zone_info = zone_of(self.time_zone)
            start, end = self.start.astimezone(zone_info), self.end.astimezone(zone_info)
            until = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
            return f"{start:%Y-%m-%d %H:%M} to {until}{zone}"
        lasting = f" for {format_duration(self.duration or 0)}"
        if self.cron is not None:
            return f"cron “{self.cron}”{lasting}{zone}"
        days = ", ".join(d.capitalize() for d in self.days)
        return f"{days} {self.at:%H:%M}{lasting}{zone}"


class MaintenanceSpec(MaintenanceFields):
    """A ``[[maintenance]]`` table of the config file: monitors by their keys."""

    owner: str = Field(min_length=1, max_length=64, description="username of the owner")
    key: str | None = Field(None, min_length=1, max_length=200, description="stable identity; defaults to the name")
    monitors: list[str] = Field(default_factory=list, max_length=1000, description="keys of the owner's monitors")

    @property
    def stable_key(self) -> str:
        return self.key or self.name

    @model_validator(mode="after")
    def _chosen(self) -> Self:
        _needs_scope(self.all_monitors, self.monitors, self.tags)
        return self


class MaintenanceIn(MaintenanceFields):
    """A window as the API and the pages take it: monitors by their ids."""

    monitor_ids: list[int] = Field(default_factory=list, max_length=1000, description="ids of the owner's monitors")

    @model_validator(mode="after")
    def _chosen(self) -> Self:
        _needs_scope(self.all_monitors, self.monitor_ids, self.tags)
        return self


class MaintenanceWindow(MaintenanceIn):
    """A window as stored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int
    owner_id: int
    config_key: str | None = None

    @property
    def declared_in_file(self) -> bool:
        return self.config_key is not None

    def covers(self, monitor_id: int, owner_id: int, tags: list[str] | tuple[str, ...]) -> bool:
        """Whether this window is about that monitor (not whether it is on now)."""
        if owner_id != self.owner_id:
            return False
        return self.all_monitors or monitor_id in self.monitor_ids or any(tag in self.tags for tag in tags)


def _needs_scope(everything: bool, chosen: list[int] | list[str], tags: list[str]) -> None:
    if not (everything or chosen or tags):
        raise Across("monitors", "choose the monitors: all of them, some by name, or those with a tag")


def zone_of(name: str) -> zoneinfo.ZoneInfo:
    """The time zone ``name`` (IANA), or ValueError naming it."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'") from None


def _aware(moment: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class Occurrence:
    """One time a window is on: ``start <= t < end``, both aware (UTC)."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Schedule:
    """When a window is on: pure arithmetic over its fields, no clock."""

    once: Occurrence | None
    cron: str | None
    duration: timedelta
    zone: zoneinfo.ZoneInfo

    @classmethod
    def of(cls, fields: MaintenanceFields) -> Schedule:
        zone = zone_of(fields.time_zone)
        if fields.start is not None and fields.end is not None:
            once = Occurrence(fields.start.astimezone(UTC), fields.end.astimezone(UTC))
            return cls(once, None, once.end - once.start, zone)
        cron = fields.cron
        if cron is None and fields.at is not None:
            # Weekly days at a time are a cron expression; one path for both, DST included.
            days = ",".join(str((WEEKDAYS.index(d) + 1) % 7) for d in fields.days)
            cron = f"{fields.at.minute} {fields.at.hour} * * {days}"
        return cls(None, cron, timedelta(seconds=fields.duration or 0), zone)

    def covering(self, moment: datetime) -> Occurrence | None:
        """The occurrence that is on at ``moment`` (overlapping ones merged), None when none is."""
        if self.once is not None:
            return self.once if moment in self.once else None
        latest = self._start_at_or_before(moment)
        if latest is None or latest + self.duration <= moment:
            return None
        start = latest
        for n, earlier in enumerate(self._starts(start, reverse=True)):
            if earlier + self.duration < start or n >= _MERGE_LIMIT:
                break
            start = earlier
        return Occurrence(start, self._merged_end(latest))

    def next_after(self, moment: datetime) -> Occurrence | None:
        """The first occurrence that starts after ``moment``, None when there is none."""
        if self.once is not None:
            return self.once if self.once.start > moment else None
        for start in self._starts(moment):
            return Occurrence(start, self._merged_end(start))
        return None

    def _start_at_or_before(self, moment: datetime) -> datetime | None:
        # cronsim steps whole minutes and goes strictly backwards: start from the next minute.
        minute = moment.astimezone(self.zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for start in self._starts(minute, reverse=True, local=True):
            return start
        return None

    def _merged_end(self, start: datetime) -> datetime:
        end = start + self.duration
        for n, later in enumerate(self._starts(start)):
            if later > end or n >= _MERGE_LIMIT:
                break
            end = later + self.duration
        return end

    def _starts(self, moment: datetime, *, reverse: bool = False, local: bool = False) -> _Starts:
        origin = moment if local else moment.astimezone(self.zone)
        return _Starts(CronSim(self.cron or "", origin, reverse=reverse))


class _Starts:
    """Start times from cronsim, in UTC; stops after ten years without one (an impossible date)."""

    def __init__(self, source: CronSim) -> None:
        self._source = source

    def __iter__(self) -> _Starts:
        return self

    def __next__(self) -> datetime:
        try:
            found: datetime = next(self._source)
        except (StopIteration, CronSimError):
            raise StopIteration from None
        return found.astimezone(UTC)


def on_at(window: MaintenanceFields, moment: datetime) -> Occurrence | None:
    """Whether ``window`` is on at ``moment``: the occurrence, or None."""
    return window.schedule.covering(moment)


def upcoming(window: MaintenanceFields, moment: datetime, within: timedelta) -> Occurrence | None:
    """The next occurrence starting after ``moment`` and within ``within`` of it."""
    found = window.schedule.next_after(moment)
    return found if found is not None and found.start - moment <= within else None
