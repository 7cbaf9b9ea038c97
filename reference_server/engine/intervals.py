"""Calendar arithmetic for reset intervals.

Boundaries are always ``anchor + k * interval`` computed from the anchor (never cumulatively),
so a Jan 31 anchor gives Feb 28/29 and then Mar 31 rather than drifting to the 28th.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timezone

FIXED_MS: dict[str, int] = {
    "minute": 60_000,
    "hour": 3_600_000,
    "day": 86_400_000,
    "week": 7 * 86_400_000,
}
MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "semi_annual": 6, "year": 12}

# Rank used by the deduction order: shorter intervals are drained first.
INTERVAL_RANK: dict[str, int] = {
    "minute": 0,
    "hour": 1,
    "day": 2,
    "week": 3,
    "month": 4,
    "quarter": 5,
    "semi_annual": 6,
    "year": 7,
}


def approx_interval_ms(interval: str, count: int = 1) -> float:
    """A comparable length for ordering intervals with counts (2 weeks vs 1 month)."""
    if interval in FIXED_MS:
        return float(FIXED_MS[interval] * count)
    if interval in MONTHS:
        return MONTHS[interval] * count * 30.44 * 86_400_000
    return float("inf")


def _to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def add_months(ms: int, months: int) -> int:
    """``ms`` moved by a number of calendar months, clamping the day to the month's length."""
    dt = _to_dt(ms)
    total = dt.month - 1 + months
    year = dt.year + total // 12
    month = total % 12 + 1
    day = min(dt.day, calendar.monthrange(year, month)[1])
    moved = dt.replace(year=year, month=month, day=day)
    return int(moved.timestamp() * 1000)


def boundary(anchor_ms: int, interval: str, count: int, k: int) -> int:
    """The k-th boundary after the anchor."""
    if interval in FIXED_MS:
        return anchor_ms + FIXED_MS[interval] * count * k
    if interval in MONTHS:
        return add_months(anchor_ms, MONTHS[interval] * count * k)
    raise ValueError(f"interval {interval!r} has no boundaries")


def next_boundary_after(anchor_ms: int, interval: str, count: int, now_ms: int) -> int:
    """The first ``anchor + k * interval`` (k >= 1) strictly after ``now_ms``."""
    if interval in FIXED_MS:
        step = FIXED_MS[interval] * count
        if now_ms < anchor_ms:
            return anchor_ms + step
        k = (now_ms - anchor_ms) // step + 1
        return anchor_ms + step * k
    if interval not in MONTHS:
        raise ValueError(f"interval {interval!r} has no boundaries")
    step_months = MONTHS[interval] * count
    a, n = _to_dt(anchor_ms), _to_dt(max(now_ms, anchor_ms))
    months_between = (n.year - a.year) * 12 + (n.month - a.month)
    k = max(1, months_between // step_months)
    # Step back in case the estimate overshot, then forward to the first boundary after now.
    while k > 1 and boundary(anchor_ms, interval, count, k - 1) > now_ms:
        k -= 1
    while boundary(anchor_ms, interval, count, k) <= now_ms:
        k += 1
    return boundary(anchor_ms, interval, count, k)
