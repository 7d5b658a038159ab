"""Each user's share: how many monitors and integrations, how often, how many tests and API calls.

The limits come from ``[quotas]`` and bound what is made through the API or
the pages; the config file is the operator's and is not counted. A count
that is full raises :class:`QuotaExceeded` (the API's 409), a rate that is
spent :class:`RateLimited` (429 with ``Retry-After``); both name the limit
and the setting that raises it.

Rates are counted in memory, per process (:class:`RateLimiter`): bounded,
forgetting keys that have waited long enough to be whole again.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from uptimed.config import QuotaSettings
from uptimed.monitor import MonitorFields
from uptimed.rules.errors import Invalid, Problem, RuleError


class QuotaExceeded(RuleError):
    """The user has as many of something as the operator allows."""

    def __init__(self, what: str, limit: int, setting: str) -> None:
        self.what = what
        self.limit = limit
        self.setting = setting
        super().__init__(f"limit reached: at most {limit} {what} per user ({setting})")


class RateLimited(RuleError):
    """Too many of something in a short time; ``retry_after`` seconds until the next one is allowed."""

    def __init__(self, what: str, retry_after: float, setting: str) -> None:
        self.what = what
        self.retry_after = retry_after
        self.setting = setting
        super().__init__(f"too many {what}: try again in {math.ceil(retry_after)} s ({setting})")


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """A token bucket per key: ``per_minute`` whole, refilled evenly; at most ``max_keys`` keys kept.

    A key not seen for a minute is whole again, so forgetting it changes
    nothing; when the map is full the longest unseen key goes first.
    """

    per_minute: int
    max_keys: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[Hashable, _Bucket] = field(default_factory=OrderedDict)

    def take(self, key: Hashable) -> float | None:
        """Spend one for ``key``: None when allowed, else the seconds until it would be."""
        now = self.clock()
        rate = self.per_minute / 60.0
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.per_minute), now)
        else:
            bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
        self._buckets[key] = bucket  # the most recently seen last
        self._forget(now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

    def _forget(self, now: float) -> None:
        while self._buckets:
            oldest_key, oldest = next(iter(self._buckets.items()))
            if now - oldest.at < 60.0 and len(self._buckets) <= self.max_keys:
                break
            del self._buckets[oldest_key]

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass
class Limits:
    """The ``[quotas]`` of this process and the rates it has counted so far."""

    settings: QuotaSettings
    test_sends: RateLimiter
    api_requests: RateLimiter

    @classmethod
    def of(cls, settings: QuotaSettings) -> Limits:
        return cls(
            settings=settings,
            test_sends=RateLimiter(settings.test_sends_per_minute),
            api_requests=RateLimiter(settings.api_requests_per_minute),
        )

    def test_send(self, user_id: int) -> None:
        """Count one test notification of ``user_id``; :class:`RateLimited` when there were too many."""
        wait = self.test_sends.take(user_id)
        if wait is not None:
            raise RateLimited("test notifications", wait, "[quotas] test_sends_per_minute")

    def api_request(self, token: Hashable) -> None:
        """Count one API request made with ``token``; :class:`RateLimited` when there were too many."""
        wait = self.api_requests.take(token)
        if wait is not None:
            raise RateLimited("requests with this token", wait, "[quotas] api_requests_per_minute")


def interval_problems(settings: QuotaSettings, fields: MonitorFields) -> list[Problem]:
    """The interval of a monitor made through the API or the pages, against ``[quotas] min_interval``."""
    if fields.interval < settings.min_interval:
        return [
            Problem(
                ("interval",),
                f"must be at least {settings.min_interval:g} s for monitors made through the API or the pages "
                "([quotas] min_interval)",
                "interval_too_short",
            )
        ]
    return []


def check_interval(settings: QuotaSettings, fields: MonitorFields) -> None:
    """:class:`Invalid` when the interval is below ``[quotas] min_interval``."""
    found = interval_problems(settings, fields)
    if found:
        raise Invalid(found)
