"""Which kind of change an attach is: new, upgrade, downgrade or the same plan.

Rules (Autumn's): free -> paid is an upgrade and paid -> free a downgrade; free -> free upgrades; anything
involving a one-off price upgrades; two purely usage-based plans upgrade; a longer billing interval upgrades
and a shorter one downgrades; otherwise the monthly-normalised fixed price decides, ties upgrading.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import Enum

from .model import Plan, interval_days
from .periods import Interval
from .pricing import prepaid_cost

_MONTHS_PER = {
    Interval.WEEK: Decimal(12) / Decimal(52),
    Interval.MONTH: Decimal(1),
    Interval.QUARTER: Decimal(3),
    Interval.SEMI_ANNUAL: Decimal(6),
    Interval.YEAR: Decimal(12),
}


class ChangeKind(str, Enum):
    NEW = "new"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    SAME = "same"


def monthly_fixed_total(plan: Plan, quantities: Mapping[str, Decimal]) -> Decimal:
    """Base price plus prepaid items at the given quantities, normalised to one month."""
    total = Decimal(0)
    if plan.price is not None and plan.price.interval in _MONTHS_PER:
        total += plan.price.amount / (_MONTHS_PER[plan.price.interval] * plan.price.interval_count)
    for item in plan.items:
        if item.prepaid and item.price is not None and item.price.interval in _MONTHS_PER:
            cost = prepaid_cost(item, quantities.get(item.feature_id, item.included))
            total += cost / (_MONTHS_PER[item.price.interval] * item.price.interval_count)
    return total


def classify(
    current: Plan | None,
    target: Plan,
    current_quantities: Mapping[str, Decimal] | None = None,
    target_quantities: Mapping[str, Decimal] | None = None,
) -> ChangeKind:
    """Kind of change from ``current`` (the active main plan of the group and scope) to ``target``."""
    if current is None or target.add_on or target.is_one_off:
        return ChangeKind.NEW
    if current.id == target.id:
        return ChangeKind.SAME
    if current.is_free:
        return ChangeKind.UPGRADE
    if target.is_free:
        return ChangeKind.DOWNGRADE
    if current.is_one_off:
        return ChangeKind.UPGRADE
    if not current.has_fixed_price and not target.has_fixed_price:
        return ChangeKind.UPGRADE
    old_interval, new_interval = current.billing_interval(), target.billing_interval()
    if old_interval is not None and new_interval is not None:
        old_days, new_days = interval_days(*old_interval), interval_days(*new_interval)
        if new_days > old_days:
            return ChangeKind.UPGRADE
        if new_days < old_days:
            return ChangeKind.DOWNGRADE
    old_total = monthly_fixed_total(current, current_quantities or {})
    new_total = monthly_fixed_total(target, target_quantities or {})
    return ChangeKind.UPGRADE if new_total >= old_total else ChangeKind.DOWNGRADE
