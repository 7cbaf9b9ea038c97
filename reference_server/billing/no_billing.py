"""``no_billing_changes``: a plan change made in the server's records only.

Autumn's ``no_billing_changes`` (billing.attach, billing.update, their previews, billing.create_schedule
and the attach of billing.setup_payment) applies the change to the customer's plans and balances and skips
every billing step: no line items (its preview lists none), no invoice, no charge, no checkout, no refund
or credit, and no call to Stripe. Here the same: the change is quoted as without the flag (which plan
starts, ends or is scheduled, the new quantities, balances, period and anchor), then its invoice is
emptied and nothing is collected, invoiced or refunded; the customer's Stripe subscriptions are not
synced for it (:func:`.plan_changes.emit_billing_updated` with ``sync_processor=False``).

What Autumn leaves to Stripe this server does itself, so what comes later follows the server's records:
the next renewal bills the plans the customer then has, a plan scheduled by the change is billed when
it starts, and the Stripe mirror shows the change with the customer's next synced billing change (its
renewal at the latest).

Lines already waiting for the next invoice of a plan the change ends (``*_next_cycle`` prorations,
:mod:`reference_server.store.pending_lines`) were owed before the change; they are never left waiting
for a plan the customer no longer has.  An upgrade hands them to the plan replacing it: its next invoice
(its first renewal, as the preview's ``next_cycle`` shows) takes them, as Stripe's next invoice of the
subscription Autumn leaves running would.  A plan that ends with nothing replacing it (an immediate
cancel, or an upgrade to a plan without a price) has no invoice to come: they are dropped with it, the
same as the credit for its unused time, since its final invoice is the billing step the flag skips.

Options that ask for a billing step are refused with it (400 ``invalid_request``): an invoice
(``invoice_mode``), a checkout (``redirect_mode: "always"``, ``long_lived_checkout``), the caller's own
invoice lines (``custom_line_items``) and a refund (``refund_last_payment``, as Autumn refuses it).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

from autumn_sdk._generated.models import (
    AttachInvoiceMode,
    AttachParams,
    PreviewAttachParams,
    PreviewUpdateParams,
    UpdateSubscriptionParams,
)
from reference_server.billing.invoice_mode import enabled_mode
from reference_server.engine.billing import AttachQuote
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.errors import invalid


class NoBillingFlag(Protocol):
    """A request that takes ``no_billing_changes`` (every billing request model, setup_payment's too)."""

    @property
    def no_billing_changes(self) -> bool | None: ...


class BillingRequest(NoBillingFlag, Protocol):
    """The billing options shared by the requests :func:`check_no_billing` checks (attach, update, their
    previews, create_schedule); the options only some of them have are read per model."""

    @property
    def invoice_mode(self) -> AttachInvoiceMode | None: ...

    @property
    def redirect_mode(self) -> Literal["always", "if_required", "never"] | None: ...


def skips_billing(params: NoBillingFlag) -> bool:
    """Whether the request sets ``no_billing_changes: true``."""
    return params.no_billing_changes is True


def _conflicts(params: BillingRequest) -> list[str]:
    asked: list[str] = []
    if enabled_mode(params.invoice_mode) is not None:
        asked.append("invoice_mode")
    if params.redirect_mode == "always":
        asked.append("redirect_mode 'always'")
    if isinstance(params, AttachParams | PreviewAttachParams) and params.long_lived_checkout:
        asked.append("long_lived_checkout")
    if (
        isinstance(
            params, AttachParams | PreviewAttachParams | UpdateSubscriptionParams | PreviewUpdateParams
        )
        and params.custom_line_items
    ):
        asked.append("custom_line_items")
    if (
        isinstance(params, UpdateSubscriptionParams | PreviewUpdateParams)
        and params.refund_last_payment is not None
    ):
        asked.append("refund_last_payment")
    return asked


def check_no_billing(params: BillingRequest) -> None:
    """Refuse ``no_billing_changes`` beside an option that asks for the billing it skips."""
    if not skips_billing(params):
        return
    asked = _conflicts(params)
    if asked:
        raise invalid(
            f"{asked[0]} cannot be combined with no_billing_changes: it asks for an invoice, a checkout, "
            "a charge or a refund, and no_billing_changes skips every billing change"
        )


def unbilled(quote: AttachQuote) -> AttachQuote:
    """``quote`` with nothing due now (its plan, period, anchor, quantities and next cycle kept)."""
    return dataclasses.replace(quote, due_now=nothing_due(quote.due_now))


def nothing_due(draft: InvoiceDraft) -> InvoiceDraft:
    """An empty invoice in ``draft``'s currency."""
    return InvoiceDraft((), draft.currency)
