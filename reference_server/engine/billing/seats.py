"""Seats (continuous usage-based items) added or removed mid-period, and the released seats Autumn
keeps for reuse in their period (*replaceables*): what such a change bills now or on the next invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .invoice import InvoiceDraft, LineItem
from .lines import (
    minor,
    prorated_minor,
    quantity_line,
)
from .model import OnDecrease, OnIncrease, PlanItem, Subscription
from .periods import Period, period_at
from .pricing import overage_cost, overage_units

_ZERO = Decimal(0)


@dataclass(frozen=True)
class SeatChangeQuote:
    """Units of a continuous usage-based item added or removed: what is due now, what waits for renewal."""

    due_now: InvoiceDraft
    deferred: InvoiceDraft

    @property
    def total(self) -> int:
        return self.due_now.total


@dataclass(frozen=True)
class SeatLevels:
    """A seat change seen through the released seats kept for reuse (Autumn's *replaceables*).

    ``old_paid``/``new_paid``: the units paid for in the period before and after the change (units in use
    plus the replaceables), what :func:`quote_seat_change` bills between; ``replaceables``: the released
    paid units kept after the change.
    """

    old_paid: Decimal
    new_paid: Decimal
    replaceables: Decimal


def keeps_replaceables(item: PlanItem) -> bool:
    """Released seats of this item are kept for reuse in their period: a continuous usage-based recurring
    price whose ``on_decrease`` is ``none`` (nothing credited). ``no_prorations`` keeps nothing."""
    return (
        item.continuous
        and item.usage_based
        and item.price is not None
        and item.price.recurring
        and item.proration.on_decrease is OnDecrease.NONE
    )


def _paid(item: PlanItem, usage: Decimal, replaceables: Decimal) -> Decimal:
    """Units paid for: those in use, or (with replaceables, always released beyond ``included``) the
    included ones, plus the replaceables."""
    return usage if replaceables <= 0 else max(usage, item.included) + replaceables


def seat_levels(
    item: PlanItem, old_usage: Decimal, new_usage: Decimal, replaceables: Decimal, trialing: bool
) -> SeatLevels:
    """Autumn's replaceables for an item with ``on_decrease: none``: a release of paid seats credits
    nothing, so those units stay paid until the period ends; re-adding seats in that period uses them
    first, for free, and only seats beyond them are charged. A trial keeps none (nothing is paid).
    Other items bill the units in use (``replaceables`` is 0 after the change).
    """
    if not keeps_replaceables(item) or trialing:
        return SeatLevels(old_usage, new_usage, _ZERO)
    old_over, new_over = overage_units(item, old_usage), overage_units(item, new_usage)
    if new_over < old_over:
        after = replaceables + old_over - new_over
    else:
        after = replaceables - min(replaceables, new_over - old_over)
    return SeatLevels(_paid(item, old_usage, replaceables), _paid(item, new_usage, after), after)


def quote_seat_change(
    subscription: Subscription, feature_id: str, old_usage: Decimal, new_usage: Decimal, now: int
) -> SeatChangeQuote:
    """Units of a continuous usage-based item added or removed mid-period (an entity created or deleted).

    The units in use are paid up front for the period, so a change is billed per the item's
    ``proration``: an increase is charged now, prorated (``prorate_immediately``, the default) or in
    full (``bill_immediately``); a decrease is credited for the unused time when it prorates
    (``prorate_immediately``), and not at all with ``none``/``no_prorations``.  ``prorate_next_cycle``
    puts the same prorated charge or credit on the next renewal invoice instead (``deferred``);
    ``bill_next_cycle`` bills nothing for the current period, the renewal then bills the units in use.
    Nothing is billed during a trial.
    """
    plan = subscription.plan
    nothing = SeatChangeQuote(InvoiceDraft((), plan.currency), InvoiceDraft((), plan.currency))
    item = plan.item_for(feature_id)
    if item is None or not item.continuous or not item.usage_based or item.price is None:
        return nothing
    cost_delta = overage_cost(item, new_usage) - overage_cost(item, old_usage)
    if cost_delta == 0 or subscription.trialing_at(now) or not item.price.recurring:
        return nothing
    old_q, new_q = overage_units(item, old_usage), overage_units(item, new_usage)
    period = period_at(subscription.anchor, now, item.price.interval, item.price.interval_count)
    remaining = Period(max(now, period.start), period.end)
    prorated = prorated_minor(cost_delta, period, now, plan.currency)
    due: LineItem | None = None
    deferred: LineItem | None = None
    if cost_delta > 0:
        mode = item.proration.on_increase
        if mode is OnIncrease.BILL_IMMEDIATELY:
            due = quantity_line(
                plan, item, minor(cost_delta, plan.currency), old_q, new_q, period, "billed now"
            )
        elif mode is OnIncrease.PRORATE_IMMEDIATELY:
            due = quantity_line(plan, item, prorated, old_q, new_q, remaining, "prorated now")
        elif mode is OnIncrease.PRORATE_NEXT_CYCLE:
            deferred = quantity_line(
                plan, item, prorated, old_q, new_q, remaining, "prorated on next invoice"
            )
    elif item.proration.on_decrease in (OnDecrease.PRORATE, OnDecrease.PRORATE_IMMEDIATELY):
        due = quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited now")
    elif item.proration.on_decrease is OnDecrease.PRORATE_NEXT_CYCLE:
        deferred = quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited on next invoice")
    return SeatChangeQuote(
        InvoiceDraft((due,) if due is not None else (), plan.currency),
        InvoiceDraft((deferred,) if deferred is not None else (), plan.currency),
    )
