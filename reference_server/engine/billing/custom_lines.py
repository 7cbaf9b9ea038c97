"""A change's own invoice lines (``custom_line_items``), in place of the computed proration invoice.

Autumn lets the caller dictate what an immediate change of an existing subscription bills now: the given
lines replace the whole invoice the change would have computed (credits for unused time, charges for
the time left, outstanding usage), while the plan, its period and its next renewal stay as computed.
Only such a change has an invoice to replace: a change that creates a subscription (a first paid plan,
an upgrade from a free or one-off plan), that waits for the period end, or that starts or ends a trial
is refused, as Autumn refuses it.

An update (:func:`update_custom_lines`) takes them by Autumn's update rules: the subscription it changes
must be an existing recurring paid one (not a free or one-off plan), and the change must not end a running
trial; its lines replace what the update would bill now, or are billed alone when it changes nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .attach_quotes import AttachQuote
from .errors import BillingRuleError
from .invoice import InvoiceDraft, LineItem, LineKind
from .model import Subscription
from .money import major_to_minor


@dataclass(frozen=True)
class CustomLine:
    """One line as the caller gives it: a signed amount in major units (``10.50``; negative credits)."""

    amount: Decimal
    description: str


def with_custom_lines(
    quote: AttachQuote, current: Subscription | None, lines: Sequence[CustomLine]
) -> AttachQuote:
    """``quote`` billing ``lines`` now instead of its computed invoice.

    Raises BillingRuleError when the change has no invoice of an existing subscription to replace.
    """
    if current is None or not quote.changes_paid_subscription_now:
        raise BillingRuleError(
            "custom_line_items can only be used when updating an existing subscription"
            " (not creating a new one)"
        )
    if quote.trial_ends_at is not None or current.trialing_at(quote.now):
        raise BillingRuleError("custom_line_items cannot be used when the change starts or ends a free trial")
    return dataclasses.replace(quote, due_now=custom_draft(lines, quote.due_now.currency, quote.plan.id))


def update_custom_lines(
    current: Subscription, lines: Sequence[CustomLine], currency: str, ends_trial: bool
) -> InvoiceDraft:
    """What an update of ``current`` bills now with the caller's ``lines`` (``ends_trial``: the update ends
    the trial ``current`` is in).

    Raises BillingRuleError, as Autumn's update does, for a one-off plan, a plan without a price (no
    subscription to update) and a change that ends a trial (its invoice is the processor's own).
    """
    if current.plan.is_one_off:
        raise BillingRuleError("custom_line_items is not supported for one-off products")
    if current.plan.is_free:
        raise BillingRuleError(
            "custom_line_items can only be used when updating an existing subscription"
            " (not creating a new one)"
        )
    if ends_trial:
        raise BillingRuleError(
            "custom_line_items cannot be used when the subscription update creates a Stripe-managed invoice"
            " (e.g. removing a trial)"
        )
    return custom_draft(lines, currency, current.plan.id)


def custom_draft(lines: Sequence[CustomLine], currency: str, plan_id: str) -> InvoiceDraft:
    """The caller's lines as an invoice draft of ``plan_id`` (amounts to the currency's minor unit)."""
    items = tuple(
        LineItem(
            kind=LineKind.CUSTOM,
            display_name=line.description,
            description=line.description,
            amount=major_to_minor(line.amount, currency),
            plan_id=plan_id,
        )
        for line in lines
    )
    return InvoiceDraft(items, currency)
