"""Read-only SQL for the web pages' charts: response times in buckets (``checks``), uptime per day (``check_hours``).

Every query joins ``monitors`` on the owner, so a monitor id of another user
returns nothing even if a page forgot to check it. Buckets are computed by
the database (``date_bin``); the empty ones are filled in here, so a series
always has exactly the number of entries asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from uptimed.store import PoolOrConnection


@dataclass(frozen=True)
class Point:
    """One bucket of a response-time series."""

    at: datetime
    """Start of the bucket."""
    ms: float | None
    """Average response time of the bucket's 'up' checks; None when it had none."""
    down: bool
    """Whether any check in the bucket was 'down'."""


@dataclass(frozen=True)
class DayUptime:
    """The checks of one monitor on one UTC day (those made during maintenance apart)."""

    day: date
    checks: int
    up: int
    maintenance: int = 0
    """Checks made during maintenance: in neither ``checks`` nor ``up``."""

    @property
    def percent(self) -> float | None:
        """Share of 'up' checks in percent; None when the day had no checks."""
        return 100.0 * self.up / self.checks if self.checks else None


async def recent_response_times(
    conn: PoolOrConnection,
    owner_id: int,
    monitor_ids: Iterable[int],
    *,
    since: datetime,
    buckets: int,
) -> dict[int, list[Point]]:
    """Per monitor, ``buckets`` evenly spaced buckets from ``since`` (timezone-aware) to now, all regions together.

    Every monitor of ``monitor_ids`` the owner has gets a series (all empty
    buckets when it has no checks yet); other ids are left out.
    """
    until = datetime.now(UTC)
    width = _bucket_width(since, until, buckets)
    rows = await conn.fetch(
        """
        SELECT m.id AS monitor_id, date_bin($4::interval, c.checked_at, $2) AS bucket,
               (avg(c.response_time_ms) FILTER (WHERE c.status = 'up'))::float8 AS ms,
               coalesce(bool_or(c.status = 'down'), false) AS down
        FROM monitors m
        LEFT JOIN checks c ON c.monitor_id = m.id AND c.checked_at >= $2 AND c.checked_at < $3
        WHERE m.owner_id = $1 AND m.id = ANY($5::bigint[])
        GROUP BY 1, 2
        ORDER BY 1
        """,
        owner_id,
        since,
        until,
        width,
        list(monitor_ids),
    )
    series: dict[int, list[Point]] = {}
    for row in rows:
        points = series.get(row["monitor_id"])
        if points is None:  # not setdefault: that would build an empty series for every row
            points = series[row["monitor_id"]] = _empty_series(since, width, buckets)
        if row["bucket"] is not None:  # None: the monitor had no check in the range
            _place(points, row, since, width)
    return series


async def first_checks(
    conn: PoolOrConnection, owner_id: int, monitor_ids: Iterable[int], *, since: datetime
) -> dict[int, datetime]:
    """Per monitor of the owner with checks since ``since``: its first one since then."""
    rows = await conn.fetch(
        """
        SELECT m.id, (SELECT min(c.checked_at) FROM checks c WHERE c.monitor_id = m.id AND c.checked_at >= $3) AS first
        FROM monitors m WHERE m.owner_id = $1 AND m.id = ANY($2::bigint[])
        """,
        owner_id,
        list(monitor_ids),
        since,
    )
    return {row["id"]: row["first"] for row in rows if row["first"] is not None}


async def region_response_times(
    conn: PoolOrConnection,
    owner_id: int,
    monitor_id: int,
    *,
    since: datetime,
    until: datetime,
    buckets: int,
) -> dict[str, list[Point]]:
    """Per region (by name), ``buckets`` evenly spaced buckets of one monitor's checks in ``[since, until)``.

    Only regions with checks in the range appear; nothing when the monitor is not the owner's.
    """
    width = _bucket_width(since, until, buckets)
    rows = await conn.fetch(
        """
        SELECT c.region, date_bin($5::interval, c.checked_at, $3) AS bucket,
               (avg(c.response_time_ms) FILTER (WHERE c.status = 'up'))::float8 AS ms,
               bool_or(c.status = 'down') AS down
        FROM checks c JOIN monitors m ON m.id = c.monitor_id
        WHERE c.monitor_id = $1 AND m.owner_id = $2 AND c.checked_at >= $3 AND c.checked_at < $4
        GROUP BY 1, 2
        ORDER BY 1
        """,
        monitor_id,
        owner_id,
        since,
        until,
        width,
    )
    series: dict[str, list[Point]] = {}
    for row in rows:
        if row["region"] not in series:
            series[row["region"]] = _empty_series(since, width, buckets)
        _place(series[row["region"]], row, since, width)
    return series


async def daily_uptime(
    conn: PoolOrConnection,
    owner_id: int,
    monitor_ids: Iterable[int],
    *,
    days: int = 90,
    today: date | None = None,
) -> dict[int, list[DayUptime]]:
    """Per monitor of the owner, exactly ``days`` UTC days, oldest first, ending with ``today``.

    ``today`` defaults to the current UTC date; days without checks have zero counts.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(), UTC)
    # From the hourly roll-ups: 90 days are at most 2,160 rows a region per monitor.
    rows = await conn.fetch(
        """
        SELECT m.id AS monitor_id, date_bin('1 day', h.hour, $2) AS day,
               coalesce(sum(h.checks), 0) AS checks, coalesce(sum(h.up), 0) AS up,
               coalesce(sum(h.maintenance), 0) AS maintenance
        FROM monitors m
        LEFT JOIN check_hours h ON h.monitor_id = m.id AND h.hour >= $2 AND h.hour < $3
        WHERE m.owner_id = $1 AND m.id = ANY($4::bigint[])
        GROUP BY 1, 2
        ORDER BY 1
        """,
        owner_id,
        since,
        since + timedelta(days=days),
        list(monitor_ids),
    )
    counts: dict[int, dict[date, tuple[int, int, int]]] = {}
    for row in rows:
        by_day = counts.setdefault(row["monitor_id"], {})
        if row["day"] is not None:
            by_day[row["day"].astimezone(UTC).date()] = (row["checks"], row["up"], row["maintenance"])
    return {
        monitor_id: [
            DayUptime(day, *by_day.get(day, (0, 0, 0))) for day in (first + timedelta(days=n) for n in range(days))
        ]
        for monitor_id, by_day in counts.items()
    }


def _bucket_width(since: datetime, until: datetime, buckets: int) -> timedelta:
    """The width of a bucket, rounded up to the microsecond so ``buckets`` of them cover the range."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    if until <= since:
        raise ValueError(f"the range must end after it starts ({since} .. {until})")
    span_us = (until - since) // timedelta(microseconds=1)
    return timedelta(microseconds=-(-span_us // buckets))


def _empty_series(since: datetime, width: timedelta, buckets: int) -> list[Point]:
    return [Point(at=since + n * width, ms=None, down=False) for n in range(buckets)]


def _place(points: list[Point], row: asyncpg.Record, since: datetime, width: timedelta) -> None:
    """Put the bucket of ``row`` at its index in ``points``."""
    index = (row["bucket"] - since) // width
    points[index] = Point(at=points[index].at, ms=row["ms"], down=row["down"])
