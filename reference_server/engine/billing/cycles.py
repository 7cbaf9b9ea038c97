"""A subscription's cycles as every quote sees them: the current period, what closing it early bills,
when a scheduled change takes over, and the next cycle's renewal invoice.

The attach, quantity and closing quotes (:mod:`.attach_quotes`, :mod:`.quantity_quotes`,
:mod:`.closing_quotes`) build on these, so an upgrade's credit and a cancellation's are the same lines,
and every preview of the next cycle bills what :func:`~.closing_quotes.quote_renewal` will.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .invoice import InvoiceDraft, LineItem, NextCycle
from .lines import (
    recurring_lines,
    seat_lines_for,
    seat_time_lines,
    time_scaled_lines,
    usage_charge_lines,
    usage_line_stubs,
)
from .model import Plan, Subscription
from .periods import Period, period_at

PRORATE_IMMEDIATELY = "prorate_immediately"
"""``proration_behavior``: credit and charge the rest of the period now (the default)."""
PRORATION_NONE = "none"
"""``proration_behavior``: switch without crediting or charging the rest of the period."""


def current_period(subscription: Subscription) -> Period | None:
    """The subscription's current billing period, None when it has none (one-off or free)."""
    if subscription.period_start is None or subscription.period_end is None:
        return None
    return Period(subscription.period_start, subscription.period_end)


def closing_lines(subscription: Subscription, now: int, prorate: bool) -> list[LineItem]:
    """What ending the subscription at ``now`` bills: its outstanding usage, and (``prorate``) a credit
    for the unused time of its fixed prices and of the seats paid up front; nothing while it trials."""
    lines: list[LineItem] = []
    if subscription.trialing_at(now):
        return lines
    period = current_period(subscription)
    lines += usage_charge_lines(subscription, period)
    if prorate and period is not None:
        until = paid_until(subscription, period)
        lines += time_scaled_lines(
            subscription.plan,
            subscription.prepaid_quantities,
            subscription.anchor,
            now,
            subscription.quantity,
            credit=True,
            until=until,
        )
        lines += seat_time_lines(
            subscription.plan, subscription.usage, subscription.anchor, now, credit=True, until=until
        )
    return lines


def paid_until(subscription: Subscription, period: Period) -> int | None:
    """When the subscription's payment for ``period`` stops: its own end (``ends_at``: an expiry it was
    attached with, not a cancellation) when that falls inside the period, which was billed only up to
    it; None: the whole period was paid."""
    ends = subscription.expires_at
    if subscription.canceled_at is None and ends is not None and period.start < ends < period.end:
        return ends
    return None


def change_effective_at(current: Subscription, now: int) -> int:
    """When a scheduled change takes over: the trial end while trialing, else the period end."""
    if current.trialing_at(now):
        assert current.trial_ends_at is not None
        return current.trial_ends_at
    if current.period_end is not None and current.period_end > now:
        return current.period_end
    return now


def renewal_cycle(
    plan: Plan,
    quantities: Mapping[str, Decimal],
    anchor: int,
    period: Period,
    plan_quantity: int,
    seat_usage: Mapping[str, Decimal] | None = None,
) -> NextCycle:
    """The renewal at ``period.end``: fixed prices plus the seats in use, as
    :func:`~.closing_quotes.quote_renewal` bills."""
    lines = recurring_lines(plan, quantities, anchor, period.end, plan_quantity)
    interval = plan.billing_interval()
    next_period = None
    if interval is not None:
        next_period = period_at(anchor, period.end, interval[0], interval[1])
        lines += seat_lines_for(plan, seat_usage, anchor, next_period)
    return NextCycle(
        starts_at=period.end,
        invoice=InvoiceDraft(tuple(lines), plan.currency),
        usage_lines=usage_line_stubs(plan, next_period),
    )
