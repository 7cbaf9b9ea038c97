"""``refund_last_payment`` of ``billing.update`` and its preview (Autumn's ``prorated`` and ``full``).

An immediate cancellation normally credits the plan's unused time to the customer (the cancellation's
negative lines).  With ``refund_last_payment`` that credit is not given; money is refunded instead from
the latest invoice that billed the plan (what a processor's subscription calls its latest invoice):
``prorated`` refunds the unused-time credit, ``full`` everything still refundable of that payment and
bills none of the cancellation's lines (its overage included), as Autumn does.  Either is capped at
what the card paid of that invoice less what was refunded of it already (credit spent on it is not
money to refund).  When there is nothing to refund (no paid invoice, paid with credit only, refunded
already) the plan is still cancelled, without credit and without refund, as in Autumn.

Autumn accepts the field only with ``cancel_action: cancel_immediately`` and never together with
``proration_behavior``; anything else is a 400 before anything is read or written.

The refund is recorded in the update's own transaction as a negative charge on that invoice (its
``refunded_amount``); on Stripe it is made once that transaction committed
(:func:`~reference_server.processors.compensation.refund_after_transaction`), so a cancellation that
does not commit refunds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import PreviewUpdateRefundJson
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.engine.billing.money import minor_to_json
from reference_server.errors import ApiError, invalid
from reference_server.processors.compensation import refund_after_transaction
from reference_server.processors.contract import PaymentProcessor
from reference_server.store.invoice_refunds import (
    latest_plan_invoice,
    record_refund,
    refundable,
    refunded_total,
)
from reference_server.store.invoices import InvoiceRecord


@dataclass(frozen=True)
class LastPaymentRefund:
    """The refund an immediate cancellation makes (``amount`` in minor units) of ``invoice``, of which
    ``refunded_before`` was refunded already."""

    invoice: InvoiceRecord
    amount: int
    refunded_before: int

    def to_json(self) -> PreviewUpdateRefundJson:
        """The preview's ``refund`` (not in the spec; Autumn's preview has it): amounts in major units."""
        invoice = self.invoice
        return {
            "amount": minor_to_json(self.amount, invoice.currency),
            "invoice": {
                "stripe_id": invoice.processor_id or invoice.id,
                "total": minor_to_json(invoice.total, invoice.currency),
                "refunded_amount": minor_to_json(self.refunded_before, invoice.currency),
                "currency": invoice.currency,
            },
        }


def check_refund_request(
    refund_last_payment: str | None, cancel_action: str | None, proration_behavior: str | None
) -> None:
    """Autumn's rules for ``refund_last_payment`` (a request it refuses as invalid input)."""
    if refund_last_payment is None:
        return
    if proration_behavior is not None:
        raise invalid(
            "refund_last_payment cannot be combined with proration_behavior: proration_behavior decides "
            "credits on the invoice, refund_last_payment refunds the last payment instead",
            "invalid_inputs",
        )
    if cancel_action != "cancel_immediately":
        raise invalid(
            "refund_last_payment can only be used with cancel_action 'cancel_immediately'", "invalid_inputs"
        )


def quote_refund(
    conn: Connection,
    processor: PaymentProcessor,
    customer_pk: int,
    entity_id: str | None,
    plan_id: str,
    cancel_due: InvoiceDraft,
    mode: str,
) -> tuple[InvoiceDraft, LastPaymentRefund | None]:
    """The cancellation's invoice without its credit (``full``: without any of its lines), and the
    refund of the plan's last payment (None: nothing left to refund)."""
    credit = -sum(line.amount for line in cancel_due.lines if line.amount < 0)
    kept = () if mode == "full" else tuple(line for line in cancel_due.lines if line.amount >= 0)
    due = InvoiceDraft(kept, cancel_due.currency)
    invoice = latest_plan_invoice(conn, customer_pk, plan_id, entity_id)
    if invoice is None:
        return due, None
    left = refundable(conn, invoice)
    amount = left if mode == "full" else min(left, credit)
    if amount <= 0:
        return due, None
    if invoice.processor != processor.name:
        raise ApiError(
            400,
            "unsupported_field",
            f"refund_last_payment: invoice {invoice.id} was paid through the {invoice.processor} processor, "
            f"not {processor.name}, which acts for this customer now; the reference server refunds only "
            "through the processor that took the payment",
        )
    return due, LastPaymentRefund(invoice, amount, refunded_total(conn, invoice.pk))


def make_refund(
    conn: Connection, processor: PaymentProcessor, customer_pk: int, refund: LastPaymentRefund, now: int
) -> None:
    """Record the refund in this transaction; a processor holding the money (Stripe) refunds it once the
    transaction committed."""
    invoice = refund.invoice
    refund_id = record_refund(conn, invoice, refund.amount, now)
    processor_invoice = processor.processor_invoice_id(invoice.processor_id)
    if processor_invoice is not None:
        refund_after_transaction(
            conn, processor, customer_pk, invoice.id, processor_invoice, refund_id, refund.amount, now
        )
