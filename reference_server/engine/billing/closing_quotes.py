"""What a subscription bills when a period closes: at a renewal (the ended period's usage and the next
period up front), at its end (its last usage) or at a cancellation (now, with a credit for the unused
time, or at the period end).
"""

from __future__ import annotations

from dataclasses import dataclass

from .cycles import change_effective_at, closing_lines, current_period
from .errors import BillingRuleError
from .invoice import InvoiceDraft, LineItem
from .lines import recurring_lines, seat_lines, usage_charge_lines
from .model import Subscription
from .periods import Period, period_at


@dataclass(frozen=True)
class CancelQuote:
    due_now: InvoiceDraft
    ends_at: int


@dataclass(frozen=True)
class RenewalQuote:
    """Invoice at a period boundary: arrears usage of the ended period plus the next period up front."""

    invoice: InvoiceDraft
    next_period: Period


def quote_cancel(
    subscription: Subscription, now: int, immediately: bool, prorate: bool = True
) -> CancelQuote:
    """Cancel now (prorated credit for unused time, seats paid up front included, outstanding usage
    billed) or at the period end."""
    if not immediately:
        return CancelQuote(
            InvoiceDraft((), subscription.plan.currency), change_effective_at(subscription, now)
        )
    lines = closing_lines(subscription, now, prorate)
    return CancelQuote(InvoiceDraft(tuple(lines), subscription.plan.currency), now)


def quote_renewal(subscription: Subscription, boundary_at: int) -> RenewalQuote:
    """Invoice at ``boundary_at``: the ended period's overage plus the next period's fixed prices.

    At a trial end nothing was metered for money, so only the first full period is billed.
    """
    plan = subscription.plan
    interval = plan.billing_interval()
    if interval is None:
        raise BillingRuleError(f"Plan {plan.id} has no recurring price to renew")
    ended = current_period(subscription)
    lines: list[LineItem] = []
    trial_end = subscription.trial_ends_at is not None and boundary_at <= subscription.trial_ends_at
    if not trial_end:
        lines += usage_charge_lines(subscription, ended)
    lines += recurring_lines(
        plan, subscription.prepaid_quantities, subscription.anchor, boundary_at, subscription.quantity
    )
    next_period = period_at(subscription.anchor, boundary_at, *interval)
    lines += seat_lines(subscription, next_period)
    return RenewalQuote(InvoiceDraft(tuple(lines), plan.currency), next_period)


def quote_final_usage(subscription: Subscription) -> InvoiceDraft:
    """Arrears usage billed when a subscription ends at its period end."""
    return InvoiceDraft(
        tuple(usage_charge_lines(subscription, current_period(subscription))), subscription.plan.currency
    )
