"""An attach's own invoice lines (``custom_line_items``), in place of the computed proration invoice.

Autumn lets the caller dictate what an immediate change of an existing subscription bills now: the given
lines replace the whole invoice the change would have computed (credits for unused time, charges for
the time left, outstanding usage), while the plan, its period and its next renewal stay as computed.
Only such a change has an invoice to replace: a change that creates a subscription (a first paid plan,
an upgrade from a free or one-off plan), that waits for the period end, or that starts or ends a trial
is refused, as Autumn refuses it.
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
    currency = quote.due_now.currency
    items = tuple(
        LineItem(
            kind=LineKind.CUSTOM,
            display_name=line.description,
            description=line.description,
            amount=major_to_minor(line.amount, currency),
            plan_id=quote.plan.id,
        )
        for line in lines
    )
    return dataclasses.replace(quote, due_now=InvoiceDraft(items, currency))
