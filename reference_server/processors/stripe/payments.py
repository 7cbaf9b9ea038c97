"""Taking a server invoice's amount from a saved card: its Stripe invoice paid off-session.

A payment Stripe took is registered with
:func:`~reference_server.processors.compensation.settle_after_transaction`, so it is refunded unless the
server's transaction records it; an invoice left open for a retry or 3-D Secure (or for want of a card,
:func:`leave_unpaid`) is voided unless it does.
"""

from __future__ import annotations

from typing import Any

import stripe
from sqlalchemy import Connection

from reference_server.processors.cards import DECLINE_MESSAGES, CardBehavior
from reference_server.processors.compensation import settle_after_transaction, void_after_transaction
from reference_server.processors.contract import (
    ChargeOutcome,
    Collected,
    card_failed,
    card_needs_authentication,
    card_succeeded,
)
from reference_server.processors.stripe.invoices import StripeInvoices, idempotency_key
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.invoices import InvoiceRecord, charge_attempts
from reference_server.store.payment_methods import PaymentMethodInfo

REQUIRES_ACTION = "invoice_payment_intent_requires_action"
"""Stripe's error code when paying an invoice off-session needs the customer to authenticate."""

VOIDED_ON_FAILURE = ("seats",)
"""Invoice reasons whose unpaid charge the server voids at once (a seat change that is not paid
is rolled back and its invoice kept voided, see :mod:`~reference_server.billing.seats`): their
Stripe invoice is voided with them."""


def collect(
    invoices: StripeInvoices,
    conn: Connection,
    customer: CustomerRef,
    stripe_customer: str,
    invoice: InvoiceRecord,
    payment_method: PaymentMethodInfo,
    due: int,
    now: int,
    authenticated: bool,
) -> ChargeOutcome | Collected:
    """Itemize the invoice on Stripe and pay it off-session with the saved card."""
    stripe_invoice = invoices.for_attempt(conn, customer, stripe_customer, invoice, due, now)
    code: str | None = None
    if stripe_invoice.status != "paid":
        stripe_invoice, code = _pay(invoices, conn, invoice, stripe_invoice, payment_method, authenticated)
    reverser, stripe_id = invoices.reverser, str(stripe_invoice.id)
    if stripe_invoice.status == "paid":
        # Taken from the card: refunded unless this transaction commits (see compensation).
        paid = int(stripe_invoice.amount_paid or 0)
        settle_after_transaction(conn, reverser, customer.pk, invoice.id, stripe_id, paid, now)
        return card_succeeded(conn, invoice, payment_method, due, now, stripe_id)
    needs_authentication = False
    if code == REQUIRES_ACTION or code is None:  # read before a void cancels the PaymentIntent
        intent = _latest_intent(invoices.client, stripe_invoice)
        needs_authentication = intent is not None and intent.status == "requires_action"
    if invoice.reason in VOIDED_ON_FAILURE:
        invoices.void_open(stripe_id)
    else:  # left open for a retry or 3-D Secure: voided unless this transaction commits
        void_after_transaction(conn, reverser, customer.pk, invoice.id, stripe_id, due, now)
    if needs_authentication:
        return card_needs_authentication(conn, invoice, payment_method, due, now)
    message = DECLINE_MESSAGES[CardBehavior.DECLINE][1]
    decline = code if code and code != REQUIRES_ACTION else "card_declined"
    return card_failed(conn, invoice, payment_method, due, now, decline, message)


def leave_unpaid(
    invoices: StripeInvoices,
    conn: Connection,
    customer: CustomerRef,
    stripe_customer: str,
    invoice: InvoiceRecord,
    due: int,
    now: int,
) -> None:
    """No saved card can pay ``due`` of ``invoice``: its Stripe invoice is itemized and finalized all the
    same and left open (``charge_automatically``, never attempted), as Autumn leaves it when there is no
    payment method, so Stripe's books show what the server's do.  A card paying it later (the payment
    link, a card saved afterwards) pays this same Stripe invoice (:meth:`StripeInvoices.for_attempt`).
    Voided unless this transaction commits; a reason whose unpaid charge the server voids at once
    (:data:`VOIDED_ON_FAILURE`) gets no Stripe invoice at all."""
    if invoice.reason in VOIDED_ON_FAILURE:
        return
    stripe_invoice = invoices.for_attempt(conn, customer, stripe_customer, invoice, due, now)
    if stripe_invoice.status == "open":
        stripe_id = str(stripe_invoice.id)
        void_after_transaction(conn, invoices.reverser, customer.pk, invoice.id, stripe_id, due, now)


def _pay(
    invoices: StripeInvoices,
    conn: Connection,
    invoice: InvoiceRecord,
    stripe_invoice: Any,
    payment_method: PaymentMethodInfo,
    authenticated: bool,
) -> tuple[Any, str | None]:
    """Pay the open invoice with the card; the invoice afterwards and the decline code, if any.

    The payment's idempotency key names the Stripe invoice, the card and the server's count of
    attempts on the invoice: a pay repeated after a lost response (or a crash, which rolls the
    count back) is the same payment, while a new attempt after a decline is a new one."""
    client, stripe_id = invoices.client, str(stripe_invoice.id)
    attempts = charge_attempts(conn, invoice.pk)
    pending: Any = _latest_intent(client, stripe_invoice)
    waiting = pending is not None and pending.status == "requires_action"
    if authenticated and waiting and pending.payment_method == payment_method.processor_id:
        _authenticate_in_test_mode(client, pending)  # the payer completed 3-D Secure for this attempt
        return invoices.retrieve(stripe_id), None
    try:
        client.v1.invoices.pay(
            stripe_id,
            {"payment_method": str(payment_method.processor_id), "off_session": True},
            {
                "idempotency_key": idempotency_key(
                    "pay", stripe_id, str(payment_method.processor_id), str(attempts)
                )
            },
        )
    except stripe.CardError as exc:
        if exc.code != REQUIRES_ACTION or not authenticated:
            return invoices.retrieve(stripe_id), exc.code or "card_declined"
        intent = _latest_intent(client, invoices.retrieve(stripe_id))
        if intent is not None and intent.status == "requires_action":
            _authenticate_in_test_mode(client, intent)
    return invoices.retrieve(stripe_id), None


def _latest_intent(client: stripe.StripeClient, stripe_invoice: Any) -> Any | None:
    """The PaymentIntent of the invoice's latest payment attempt, if any."""
    payments = getattr(stripe_invoice, "payments", None)
    data = list(getattr(payments, "data", None) or [])
    intent_id: str | None = None
    if data:
        intent_id = str(data[-1].payment.payment_intent)
    elif getattr(stripe_invoice, "payment_intent", None):
        intent_id = str(stripe_invoice.payment_intent)
    return client.v1.payment_intents.retrieve(intent_id) if intent_id else None


def _authenticate_in_test_mode(client: stripe.StripeClient, intent: Any) -> Any:
    """Complete 3-D Secure the way a browser would; only test servers (localstripe) offer this."""
    response = client.raw_request(
        "post",
        f"/v1/payment_intents/{intent.id}/_authenticate",
        client_secret=intent.client_secret,
        success="true",
    )
    return client.deserialize(response, api_mode="V1")
