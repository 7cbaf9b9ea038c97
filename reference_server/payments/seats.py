"""Paid seats: an entity created or deleted on a priced continuous feature is billed (§6.2).

Creating an entity uses one unit of its feature at customer level (the core does that); when the
unit lands on a customer-level plan whose item for the feature has a usage-based price, the seats
in use beyond ``included`` change, and this hook invoices the difference per the item's proration
(:func:`reference_server.engine.billing.quotes.quote_seat_change`).  An unpaid charge raises
:class:`~reference_server.service.entities.SeatChargeFailed`, so the entity change does not happen.
Prepaid seats need nothing here: the purchased quantity is the balance, and the core refuses an
entity beyond it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from sqlalchemy import Connection

from reference_server.engine.billing.quotes import quote_seat_change
from reference_server.service.context import Ctx
from reference_server.service.entities import SeatChargeFailed
from reference_server.service.subscriptions import load_instances
from reference_server.store.catalog import Catalog
from reference_server.store.subjects import CustomerRow

from .convert import engine_subscription
from .flows import charge_draft
from .processor import ChargeOutcome, PaymentProcessor
from .records import add_pending_lines, restore_voided, snapshot_invoice

SeatBilling = Callable[
    [Ctx, Connection, Catalog, CustomerRow, str, Mapping[int, tuple[float, float]], int], None
]


def _usage(included: Decimal, quantity: int, balance: float) -> Decimal:
    """Units in use of a usage-based source: its included units plus what went below zero."""
    return included * quantity + max(Decimal(0), -Decimal(str(balance)))


def _charge_failed(conn: Connection, feature_id: str, outcome: ChargeOutcome) -> SeatChargeFailed:
    """The 402 for an unpaid seat charge; its invoice is written back voided after the rollback.

    Off-session there is nobody to authenticate a charge, so "requires action" fails like a decline
    (Autumn voids the invoice and answers ``invoice_payment_failed`` with the required action's reason).
    """
    assert outcome.invoice is not None
    snapshot = snapshot_invoice(conn, outcome.invoice.pk)
    action = outcome.required_action()
    reason = action["reason"] if action else "the payment failed"
    message = (
        f"Failed to pay invoice {outcome.invoice.id} for feature {feature_id}: {reason}. "
        "The invoice was voided and nothing changed; check the customer's payment method and retry"
    )
    return SeatChargeFailed(message, lambda c: restore_voided(c, snapshot))


def make_seat_billing(processor: Callable[[], PaymentProcessor], base_url: Callable[[], str]) -> SeatBilling:
    """The hook installed as ``state.extras["seat_billing"]``.

    ``changes`` maps each plan instance whose source moved to its balance before and after.
    """

    def bill(
        ctx: Ctx,
        conn: Connection,
        cat: Catalog,
        customer: CustomerRow,
        feature_id: str,
        changes: Mapping[int, tuple[float, float]],
        now: int,
    ) -> None:
        for inst in load_instances(conn, customer.pk):
            if inst.pk not in changes or inst.status != "active" or inst.entity_pk is not None:
                continue
            subscription = engine_subscription(conn, cat, inst)
            item = subscription.plan.item_for(feature_id) if subscription is not None else None
            if subscription is None or item is None:
                continue
            before, after = changes[inst.pk]
            quote = quote_seat_change(
                subscription,
                feature_id,
                _usage(item.included, subscription.quantity, before),
                _usage(item.included, subscription.quantity, after),
                now,
            )
            add_pending_lines(conn, customer.pk, quote.deferred, processor().name, now, base_url())
            outcome = charge_draft(processor(), conn, customer, quote.due_now, "seats", now, base_url())
            if outcome is not None and not outcome.succeeded and outcome.invoice is not None:
                raise _charge_failed(conn, feature_id, outcome)

    return bill
