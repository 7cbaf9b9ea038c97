"""Billing periods and reset boundaries computed from an anchor.

Every boundary is ``anchor + k * interval`` computed directly from the anchor, never by adding one interval
to the previous boundary, so a Jan 31 anchor gives Feb 28/29 and then Mar 31 again instead of drifting.
Timestamps are Unix milliseconds, as everywhere in the API.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from enum import Enum


class Interval(str, Enum):
    """Billing or reset interval. ``one_off`` has no boundaries."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    SEMI_ANNUAL = "semi_annual"
    YEAR = "year"
    ONE_OFF = "one_off"


_FIXED_MS = {
    Interval.MINUTE: 60_000,
    Interval.HOUR: 3_600_000,
    Interval.DAY: 86_400_000,
    Interval.WEEK: 7 * 86_400_000,
}
_MONTHS = {Interval.MONTH: 1, Interval.QUARTER: 3, Interval.SEMI_ANNUAL: 6, Interval.YEAR: 12}

# Rough length of each interval in days, used only to order intervals and compare plan prices.
APPROX_DAYS = {
    Interval.MINUTE: 1 / 1440,
    Interval.HOUR: 1 / 24,
    Interval.DAY: 1.0,
    Interval.WEEK: 7.0,
    Interval.MONTH: 30.4375,
    Interval.QUARTER: 91.3125,
    Interval.SEMI_ANNUAL: 182.625,
    Interval.YEAR: 365.25,
}


@dataclass(frozen=True)
class Period:
    """Half-open billing period ``[start, end)`` in Unix milliseconds."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def remaining_at(self, at: int) -> int:
        """Milliseconds of the period left at ``at``, clamped to ``[0, length]``."""
        return max(0, self.end - max(at, self.start))


def _to_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


def _to_ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


def add_months(ms: int, months: int) -> int:
    """``ms`` shifted by whole calendar months, the day clamped to the target month's last day."""
    moment = _to_datetime(ms)
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return _to_ms(moment.replace(year=year, month=month, day=day))


def boundary(anchor: int, interval: Interval, interval_count: int, k: int) -> int:
    """The ``k``-th boundary after ``anchor`` (k may be negative)."""
    if interval is Interval.ONE_OFF:
        raise ValueError("one_off has no period boundaries")
    if interval in _FIXED_MS:
        return anchor + k * interval_count * _FIXED_MS[interval]
    return add_months(anchor, k * interval_count * _MONTHS[interval])


def add_interval(start: int, interval: Interval, interval_count: int = 1) -> int:
    """End of one interval starting at ``start``."""
    return boundary(start, interval, interval_count, 1)


def period_index(anchor: int, at: int, interval: Interval, interval_count: int) -> int:
    """Index ``k`` such that ``boundary(k) <= at < boundary(k + 1)``."""
    if interval in _FIXED_MS:
        return (at - anchor) // (interval_count * _FIXED_MS[interval])
    a, b = _to_datetime(anchor), _to_datetime(at)
    months = (b.year - a.year) * 12 + (b.month - a.month)
    k = months // (interval_count * _MONTHS[interval])
    while boundary(anchor, interval, interval_count, k) > at:
        k -= 1
    while boundary(anchor, interval, interval_count, k + 1) <= at:
        k += 1
    return k


def period_at(anchor: int, at: int, interval: Interval, interval_count: int = 1) -> Period:
    """The period (anchored at ``anchor``) that contains ``at``."""
    k = period_index(anchor, at, interval, interval_count)
    return Period(
        boundary(anchor, interval, interval_count, k), boundary(anchor, interval, interval_count, k + 1)
    )


def next_boundary_after(anchor: int, at: int, interval: Interval, interval_count: int = 1) -> int:
    """First ``anchor + k * interval`` strictly after ``at``."""
    return period_at(anchor, at, interval, interval_count).end


def add_duration(start: int, duration_type: str, length: int) -> int:
    """``start`` plus a trial-style duration (day, month or year)."""
    if duration_type == "day":
        return start + length * _FIXED_MS[Interval.DAY]
    if duration_type == "month":
        return add_months(start, length)
    if duration_type == "year":
        return add_months(start, 12 * length)
    raise ValueError(f"unknown duration type {duration_type!r}")
