"""Giving back what a Stripe invoice collected: a payment the server never recorded (a reversal,
see :mod:`~reference_server.processors.compensation`) and a refund the server decided
(``refund_last_payment``).

Both are idempotent: every refund carries an idempotency key derived from what makes it the same
refund, and the amount a charge has left is read from Stripe first.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe

from reference_server.processors.stripe.invoices import StripeInvoices, idempotency_key, is_reversed

log = logging.getLogger(__name__)


def reverse_payment(invoices: StripeInvoices, processor_invoice_id: str, server_invoice_id: str) -> None:
    """Give back a Stripe invoice's payment the server did not record (its transaction did not
    commit): a paid invoice is marked ``autumn_reversal`` (so no retry of the server invoice takes
    it as paid) and every payment of it refunded in full; an open one is voided.  A refund carries
    a key derived from its PaymentIntent, and a charge already refunded is left alone."""
    client = invoices.client
    existing = invoices.retrieve(processor_invoice_id)
    if existing.status in ("open", "draft"):
        invoices.void_or_delete(processor_invoice_id, str(existing.status))
        return
    if existing.status != "paid":
        return
    reason = f"Autumn invoice {server_invoice_id} was not recorded: refunded"
    if not is_reversed(existing):
        client.v1.invoices.update(processor_invoice_id, {"metadata": {"autumn_reversal": "refunding"}})
    for intent_id in _paid_intents(existing):
        left = _refundable(client, intent_id)
        if left <= 0:
            continue
        tags = {"autumn_invoice_id": server_invoice_id, "autumn_reason": "not_recorded"}
        _refund(client, intent_id, left, tags, idempotency_key("refund", intent_id, str(left)))
    client.v1.invoices.update(
        processor_invoice_id, {"metadata": {"autumn_reversal": "refunded"}, "description": reason}
    )


def refund_payment(invoices: StripeInvoices, processor_invoice_id: str, amount: int, refund_id: str) -> None:
    """Refund ``amount`` (minor units) of a paid Stripe invoice as the server's refund ``refund_id``
    (``refund_last_payment``), from its payments in turn.  What Stripe already refunded under
    ``refund_id`` counts, and each refund's idempotency key derives from it.  More than its payments
    have left is not refunded (Stripe would refuse it): logged, not retried."""
    client = invoices.client
    intents = _paid_intents(invoices.retrieve(processor_invoice_id))
    left = amount
    for intent_id in intents:
        for made in client.v1.refunds.list({"payment_intent": intent_id}).data:
            metadata = made.metadata.to_dict() if made.metadata else {}
            if metadata.get("autumn_refund_id") == refund_id and made.status != "failed":
                left -= int(made.amount)
    for intent_id in intents:
        if left <= 0:
            return
        part = min(left, _refundable(client, intent_id))
        if part <= 0:
            continue
        tags = {"autumn_refund_id": refund_id, "autumn_reason": "refund_last_payment"}
        _refund(client, intent_id, part, tags, idempotency_key("refund", refund_id, intent_id, str(part)))
        left -= part
    if left > 0:
        log.warning(
            "refund %s of Stripe invoice %s: %d minor units more than its payments have left",
            refund_id,
            processor_invoice_id,
            left,
        )


def _refund(
    client: stripe.StripeClient, intent_id: str, amount: int, metadata: dict[str, str], key: str
) -> None:
    """Refund ``amount`` (minor units) of the PaymentIntent's charge, once per idempotency ``key``."""
    client.v1.refunds.create(
        {"payment_intent": intent_id, "amount": amount, "metadata": metadata}, {"idempotency_key": key}
    )


def _refundable(client: stripe.StripeClient, intent_id: str) -> int:
    """What the PaymentIntent's charge has left to refund (0 unless it succeeded)."""
    intent = client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]})
    charge = intent.latest_charge
    if charge is None or isinstance(charge, str) or intent.status != "succeeded":
        return 0
    return int(charge.amount) - int(charge.amount_refunded or 0)


def _paid_intents(stripe_invoice: Any) -> list[str]:
    """The PaymentIntents of the invoice's successful payments."""
    payments = getattr(stripe_invoice, "payments", None)
    data = list(getattr(payments, "data", None) or [])
    found = [str(p.payment.payment_intent) for p in data if getattr(p, "status", None) == "paid"]
    if not found and getattr(stripe_invoice, "payment_intent", None):
        found = [str(stripe_invoice.payment_intent)]
    return found
