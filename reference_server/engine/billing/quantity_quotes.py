"""What changing a subscription's prepaid quantities mid-cycle costs, per each item's ``proration``
settings: billed or credited now, carried to the next renewal invoice, or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from .cycles import PRORATION_NONE, current_period, renewal_cycle
from .invoice import InvoiceDraft, LineItem, NextCycle
from .lines import minor, prorated_minor, quantity_line, resolve_quantities
from .model import OnDecrease, OnIncrease, Subscription
from .periods import Period, period_at
from .pricing import prepaid_cost, prepaid_units


@dataclass(frozen=True)
class QuantityQuote:
    """A prepaid quantity change on an existing subscription."""

    due_now: InvoiceDraft
    next_cycle: NextCycle | None
    prepaid_quantities: Mapping[str, Decimal]
    balance_deltas: Mapping[str, Decimal] = field(default_factory=dict)
    # ``*_next_cycle`` prorations, carried to the next renewal invoice (Stripe's pending invoice items).
    deferred: InvoiceDraft = field(default_factory=InvoiceDraft)

    @property
    def total(self) -> int:
        return self.due_now.total


def quote_quantity_change(
    subscription: Subscription,
    requested: Mapping[str, Decimal],
    now: int,
    proration_behavior: str | None = None,
) -> QuantityQuote:
    """Change prepaid quantities mid-cycle, billed per each item's ``proration`` settings."""
    plan = subscription.plan
    merged = dict(subscription.prepaid_quantities)
    merged.update(resolve_quantities(plan, requested, previous=subscription))
    due: list[LineItem] = []
    deferred: list[LineItem] = []
    deltas: dict[str, Decimal] = {}
    trialing = subscription.trialing_at(now)
    for feature_id in requested:
        item = plan.item_for(feature_id)
        assert item is not None and item.price is not None
        old_q = subscription.prepaid_quantities.get(feature_id, item.included)
        new_q = merged[feature_id]
        deltas[feature_id] = prepaid_units(item, new_q) - prepaid_units(item, old_q)
        cost_delta = prepaid_cost(item, new_q) - prepaid_cost(item, old_q)
        if cost_delta == 0 or trialing or proration_behavior == PRORATION_NONE:
            continue
        if not item.price.recurring:
            if cost_delta > 0:
                amount = minor(cost_delta, plan.currency)
                due.append(quantity_line(plan, item, amount, old_q, new_q, None, "charged now"))
            continue
        period = period_at(subscription.anchor, now, item.price.interval, item.price.interval_count)
        remaining = Period(max(now, period.start), period.end)
        prorated = prorated_minor(cost_delta, period, now, plan.currency)
        if cost_delta > 0:
            mode = item.proration.on_increase
            if mode is OnIncrease.BILL_IMMEDIATELY:
                due.append(
                    quantity_line(
                        plan, item, minor(cost_delta, plan.currency), old_q, new_q, period, "billed now"
                    )
                )
            elif mode is OnIncrease.PRORATE_IMMEDIATELY:
                due.append(quantity_line(plan, item, prorated, old_q, new_q, remaining, "prorated now"))
            elif mode is OnIncrease.PRORATE_NEXT_CYCLE:
                deferred.append(
                    quantity_line(plan, item, prorated, old_q, new_q, remaining, "prorated on next invoice")
                )
        else:
            decrease = item.proration.on_decrease
            if decrease in (OnDecrease.PRORATE, OnDecrease.PRORATE_IMMEDIATELY):
                due.append(quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited now"))
            elif decrease is OnDecrease.PRORATE_NEXT_CYCLE:
                deferred.append(
                    quantity_line(plan, item, prorated, old_q, new_q, remaining, "credited on next invoice")
                )
    next_cycle = None
    ongoing = current_period(subscription)
    if ongoing is not None and plan.billing_interval() is not None:
        base = renewal_cycle(
            plan, merged, subscription.anchor, ongoing, subscription.quantity, subscription.usage
        )
        next_cycle = NextCycle(
            base.starts_at,
            InvoiceDraft(base.invoice.lines + tuple(deferred), plan.currency),
            base.usage_lines,
        )
    return QuantityQuote(
        InvoiceDraft(tuple(due), plan.currency),
        next_cycle,
        merged,
        deltas,
        InvoiceDraft(tuple(deferred), plan.currency),
    )
