"""A new subscription started in the past (``starts_at`` before now): how many periods it covers, and
its attach quote moved back there, every period since billed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal

from .attach_quotes import AttachQuote
from .cycles import renewal_cycle
from .errors import BillingRuleError
from .invoice import InvoiceDraft
from .lines import backdated_lines, seat_lines_for
from .model import Plan
from .periods import Interval, period_at, period_index


def backdated_periods(plan: Plan, starts_at: int, now: int) -> int:
    """How many periods of its recurring prices a plan backdated to ``starts_at`` covers up to ``now``
    (Stripe's backdated first invoice has a line per price and period)."""
    count = 0
    prices: list[tuple[Interval, int]] = []
    if plan.price is not None and plan.price.recurring:
        prices.append((plan.price.interval, plan.price.interval_count))
    prices += [
        (i.price.interval, i.price.interval_count) for i in plan.priced_items if i.price and i.price.recurring
    ]
    for interval, interval_count in prices:
        count += period_index(starts_at, now, interval, interval_count) + 1
    return count


def backdate_quote(
    quote: AttachQuote, starts_at: int, seat_usage: Mapping[str, Decimal] | None = None
) -> AttachQuote:
    """A new subscription's quote moved back to ``starts_at``: anchored there, its recurring prices billed
    for every period since, up to and including the current one (seats in use only for the current
    period); nothing it replaces may be billed (the caller allows only a new plan or a free one replaced)."""
    plan = quote.plan
    interval = plan.billing_interval()
    if interval is None:
        raise BillingRuleError(
            "Past starts_at requires a paid recurring plan and does not support one-off plans."
        )
    resolved = quote.prepaid_quantities
    period = period_at(starts_at, quote.now, *interval)
    lines = backdated_lines(plan, resolved, starts_at, quote.now)
    lines += seat_lines_for(plan, seat_usage, starts_at, period)
    return dataclasses.replace(
        quote,
        due_now=InvoiceDraft(tuple(lines), plan.currency),
        next_cycle=renewal_cycle(plan, resolved, starts_at, period, 1, seat_usage),
        anchor=starts_at,
        period=period,
        backdated_from=starts_at,
    )
