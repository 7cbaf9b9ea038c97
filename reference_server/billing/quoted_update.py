"""What :func:`.update_quote.update_quotes` answers: a ``billing.update`` as quoted, which the update,
its preview and ``billing.multi_update`` read and apply."""

from __future__ import annotations

from dataclasses import dataclass

from reference_server.billing.discounts import DiscountedChange
from reference_server.billing.last_payment_refund import LastPaymentRefund
from reference_server.billing.license_seats import Seats
from reference_server.billing.resolve import UpdateRequest
from reference_server.engine.billing import AttachQuote, InvoiceDraft, NextCycle, QuantityQuote, Subscription
from reference_server.engine.billing.preview import UpdateIntent
from reference_server.service.subscriptions import Instance
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.subjects import CustomerRow, EntityRow


@dataclass
class QuotedUpdate:
    """An update on a priced plan as quoted. Built up by the quote (``due`` and the parts its intent
    sets), then read by the preview and applied (``update_apply.apply_update``)."""

    params: UpdateRequest
    cat: Catalog
    customer: CustomerRow
    entity: EntityRow | None
    inst: Instance
    instances: list[Instance]
    """The customer's instances (``resolve_update``'s), for the scheduled switches the update ends."""
    now: int
    plan: Plan
    """The plan the instance bills (with its paid seats after a quantity change)."""
    sub: Subscription
    intent: UpdateIntent
    due: InvoiceDraft
    """What the update bills now: the quote's, the request's ``custom_line_items``, discounted."""
    no_billing: bool
    """``no_billing_changes``: the change as quoted, nothing billed for it."""
    recalculate: bool
    """``recalculate_balances``: the features the update sets a quantity of restart their balances."""
    next_cycle: NextCycle | None = None
    ends_at: int | None = None
    """A cancel: when the plan ends."""
    quantities: QuantityQuote | None = None
    """A quantity change: its quote."""
    refund: LastPaymentRefund | None = None
    """A cancel with ``refund_last_payment``: the refund."""
    discounts: DiscountedChange | None = None
    """The coupons on the change, when any applies."""
    ends_trial: bool = False
    """A customization: it ends the running trial."""
    customization: Customization | None = None
    """A customization (or a move to another version): what it switches to."""


@dataclass(frozen=True)
class Customization:
    """An update's ``customize`` (or ``version``) as quoted: the switch to the plan it gives."""

    switch: AttachQuote
    custom: Plan
    """The plan the instance moves to (with its paid seats)."""
    seats: Seats
    """The seats it keeps and resizes."""
    snapshot: bool
    """Whether the new instance stores ``custom`` (a move to a version as it is does not)."""
