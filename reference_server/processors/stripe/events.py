"""Events from an organization's Stripe account: ``POST /webhooks/stripe/{org_id}/{env}``.

Stripe signs each delivery with the endpoint's secret (``Stripe-Signature: t=...,v1=...``); the
organization saves that secret as ``test_webhook_secret`` / ``live_webhook_secret`` through the platform
API, and ``stripe.Webhook.construct_event`` checks the signature and its age before anything is read.
A PaymentIntent carries our invoice id in ``metadata.autumn_invoice_id`` (see
:class:`~reference_server.processors.stripe.processor.StripeProcessor`), so a payment that succeeds or
fails later on Stripe's side (a retry from Stripe's dashboard, a delayed method) reaches our invoice and
the subscriptions it bills.  The Stripe Invoice the processor itemizes each charge on carries the same
metadata, so ``invoice.paid`` / ``invoice.payment_failed`` reach our invoice the same way; a payment
announced twice (its PaymentIntent's event and its invoice's event) is applied once, since only an
open invoice changes.  Stripe delivers at least once: an event id is applied once per organization.

A paid Stripe invoice with our metadata whose server invoice does not exist was paid by a billing
transaction that never committed and whose process died before it could give the money back (see
:mod:`~reference_server.processors.compensation`, 5): holding the customer's billing lock (answering 503,
so Stripe delivers again later, while a billing call of the customer is in flight), the payment is
refunded through :func:`~reference_server.processors.compensation.reverse_orphan`, once, however often
its ``invoice.paid`` (or ``payment_intent.succeeded`` carrying our metadata and its invoice) comes.

An invoice-mode draft (``invoice_mode.finalize: false``) finalized on Stripe's dashboard opens the
server invoice on ``invoice.finalized`` (an ``invoice.paid`` that comes first finalizes it too); one
voided or deleted there voids it (see :mod:`~reference_server.billing.invoice_mode`,
:mod:`~reference_server.store.invoice_drafts`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from reference_server.clock import Clock
from reference_server.processors.compensation import ReverserFor, TakenPayment, reverse_orphan
from reference_server.processors.registration import CheckoutCompleted as CheckoutCompleted
from reference_server.processors.registration import CompleteCheckout as CompleteCheckout
from reference_server.store.billing_lock import release, try_acquire
from reference_server.store.billing_sessions import (
    load_session,
    update_session,
    waiting_checkout_sessions,
)
from reference_server.store.credits import add_credit
from reference_server.store.db import Database
from reference_server.store.invoice_drafts import finalize_draft, is_invoice_mode_draft, void_unpaid
from reference_server.store.invoices import (
    InvoiceRecord,
    has_retryable_invoice,
    invoice_exists,
    invoice_paid_by,
    invoice_record,
    set_invoice_status,
)
from reference_server.store.org_stripe import stripe_config
from reference_server.store.stripe_customers import stripe_customer_of
from reference_server.store.stripe_events import event_seen, org_pk_by_id, record_event, set_billed_past_due
from reference_server.store.tables.billing import INVOICE_REASON

ENVS = ("sandbox", "live")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status)


def _our_invoice(conn: Connection, org_pk: int, env: str, intent: dict[str, Any]) -> InvoiceRecord | None:
    """The invoice a PaymentIntent or a Stripe Invoice pays: by the id in its metadata, else by the
    processor id we stored (the intent, the Stripe invoice, or the Stripe invoice the intent pays)."""
    invoice_id = (intent.get("metadata") or {}).get("autumn_invoice_id")
    ids = [str(intent.get("id"))]
    if isinstance(intent.get("invoice"), str):
        ids.append(str(intent["invoice"]))
    return invoice_paid_by(conn, org_pk, env, ids, str(invoice_id) if invoice_id else None)


def _set_past_due(conn: Connection, invoice: InvoiceRecord, past_due: bool, now: int) -> None:
    """The active plan instances the invoice bills (its ``plan_ids``, on its entity or the customer
    itself) are past due or no longer."""
    set_billed_past_due(conn, invoice.customer_pk, invoice.plan_ids, invoice.entity_id, past_due, now)


def _complete_sessions(
    conn: Connection, invoice_pk: int, now: int, complete: CompleteCheckout | None
) -> None:
    """Checkout sessions still waiting on this invoice are done: the hosted page will not charge again,
    and what the session was for (an attach paid by invoice, a charge that needed 3-D Secure) happens."""
    for session_id in waiting_checkout_sessions(conn, invoice_pk):
        session = load_session(conn, session_id, "checkout", lock=True)
        if session is None or session.status not in ("open", "requires_action"):
            continue
        update_session(conn, session.pk, status="complete", completed_at=now, pending_payment_method_pk=None)
        if complete is not None:
            complete(conn, session, invoice_record(conn, invoice_pk), now)


def payment_succeeded(
    conn: Connection,
    invoice: InvoiceRecord,
    intent: dict[str, Any],
    now: int,
    complete: CompleteCheckout | None = None,
) -> str:
    """Mark the open invoice paid and finish its checkout; with no unpaid renewal left, its
    subscriptions are no longer past due."""
    if invoice.status != "open":
        return f"invoice_{invoice.status}"
    amount = int(intent.get("amount_received") or intent.get("amount_paid") or intent.get("amount") or 0)
    stored = str(invoice.processor_id or "")
    processor_id = stored if stored.startswith("in_") else str(intent.get("id"))  # keep the Stripe invoice
    credit = int(invoice.total) - amount if 0 < amount < int(invoice.total) else 0
    if credit > 0:  # the payment was the rest after the customer's credit (see processors.stripe.invoices)
        add_credit(
            conn, invoice.customer_pk, invoice.currency, -credit, f"Applied to {invoice.id}", now, invoice.pk
        )
    set_invoice_status(
        conn, invoice.pk, "paid", now, amount_paid=amount, credit_applied=credit, processor_id=processor_id
    )
    _complete_sessions(conn, invoice.pk, now, complete)
    if not has_retryable_invoice(conn, invoice.customer_pk):
        _set_past_due(conn, invoice, False, now)
    return "invoice_paid"


def payment_failed(conn: Connection, invoice: InvoiceRecord, now: int) -> str:
    """An unpaid invoice's subscriptions become past due (a paid one stays as it is)."""
    if invoice.status != "open":
        return f"invoice_{invoice.status}"
    _set_past_due(conn, invoice, True, now)
    return "past_due"


def apply_event(
    conn: Connection,
    org_pk: int,
    env: str,
    event: dict[str, Any],
    now: int,
    complete: CompleteCheckout | None = None,
    checkout_completed: CheckoutCompleted | None = None,
) -> str:
    """Apply one verified event; returns what it did (``ignored`` for types and payments not ours)."""
    kind = str(event.get("type"))
    if kind == "checkout.session.completed":
        checkout = dict((event.get("data") or {}).get("object") or {})
        return checkout_completed(conn, org_pk, env, checkout, now) if checkout_completed else "ignored"
    if kind in INVOICE_MODE_EVENTS:
        return invoice_mode_event(
            conn, org_pk, env, kind, dict((event.get("data") or {}).get("object") or {}), now
        )
    if kind not in PAYMENT_EVENTS:
        return "ignored"
    intent = dict((event.get("data") or {}).get("object") or {})
    invoice = _our_invoice(conn, org_pk, env, intent)
    if invoice is None:
        return "ignored"
    if kind in ("payment_intent.succeeded", "invoice.paid"):
        if is_invoice_mode_draft(invoice) and finalize_draft(conn, invoice.pk, now):
            # paid on Stripe before its invoice.finalized arrived: finalized first, then paid
            invoice = invoice_record(conn, invoice.pk)
        return payment_succeeded(conn, invoice, intent, now, complete)
    return payment_failed(conn, invoice, now)


INVOICE_MODE_EVENTS = ("invoice.finalized", "invoice.voided", "invoice.deleted")
"""Changes made to an invoice-mode Stripe invoice on Stripe (its dashboard): finalized, voided, deleted."""


def invoice_mode_event(
    conn: Connection, org_pk: int, env: str, kind: str, stripe_invoice: dict[str, Any], now: int
) -> str:
    """An invoice-mode draft finalized on Stripe opens the server invoice (its hosted page payable from
    now); one voided, or a draft deleted, voids it.  Only the Stripe invoice the server invoice names
    counts (one the server replaced or voided itself changes nothing)."""
    if stripe_invoice.get("object") != "invoice":
        return "ignored"
    invoice = _our_invoice(conn, org_pk, env, stripe_invoice)
    if invoice is None or invoice.reason != INVOICE_REASON:
        return "ignored"
    if str(invoice.processor_id or "") != str(stripe_invoice.get("id")):
        return "ignored"
    if kind == "invoice.finalized":
        return "invoice_finalized" if finalize_draft(conn, invoice.pk, now) else f"invoice_{invoice.status}"
    return "invoice_voided" if void_unpaid(conn, invoice.pk, now) else f"invoice_{invoice.status}"


PAYMENT_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "invoice.paid",
    "invoice.payment_failed",
)
"""The payment events applied to our invoices (a PaymentIntent's, or the Stripe Invoice's)."""


@dataclass(frozen=True)
class Orphan:
    """A paid Stripe invoice of ours whose server invoice does not exist (yet, or any more)."""

    customer_id: str
    payment: TakenPayment


def orphan_of(conn: Connection, org_pk: int, env: str, event: dict[str, Any]) -> Orphan | None:
    """The paid Stripe invoice the event announces, when it carries our metadata, belongs to one of
    our customers (its Stripe customer) and no server invoice has its ``autumn_invoice_id``."""
    kind = str(event.get("type"))
    obj = dict((event.get("data") or {}).get("object") or {})
    metadata = dict(obj.get("metadata") or {})
    if kind == "invoice.paid" and obj.get("object") == "invoice":
        stripe_invoice, amount = obj.get("id"), obj.get("amount_paid")
    elif kind == "payment_intent.succeeded" and isinstance(obj.get("invoice"), str):
        stripe_invoice, amount = obj.get("invoice"), obj.get("amount_received")
    else:
        return None
    server_invoice, customer_id = metadata.get("autumn_invoice_id"), metadata.get("autumn_customer_id")
    if not (isinstance(stripe_invoice, str) and stripe_invoice.startswith("in_")):
        return None
    if not (isinstance(server_invoice, str) and isinstance(customer_id, str) and server_invoice):
        return None
    stripe_customer = stripe_customer_of(conn, org_pk, env, customer_id)
    if stripe_customer is None or stripe_customer != obj.get("customer"):
        return None
    if invoice_exists(conn, server_invoice):
        return None
    paid = int(amount) if isinstance(amount, int) else None
    return Orphan(customer_id, TakenPayment(org_pk, env, server_invoice, stripe_invoice, paid))


def stripe_webhook_routes(
    db: Database,
    clock: Clock,
    complete_checkout: CompleteCheckout | None = None,
    on_change: Callable[[], None] | None = None,
    checkout_completed: CheckoutCompleted | None = None,
    reverser_for: ReverserFor | None = None,
) -> list[BaseRoute]:
    """The Stripe event endpoint; ``complete_checkout`` finishes sessions an event paid, ``on_change``
    runs after an event changed something (cache resets), ``reverser_for`` gives back paid Stripe
    invoices whose server invoice was lost (see the module docs)."""

    def reconcile(org_pk: int, env: str, event_id: str, body: dict[str, Any]) -> str | JSONResponse | None:
        """A paid orphan's refund (``refunded``, ``refund_due``...), a 503 while the customer's billing
        call is in flight, or None: not an orphan (or a duplicate event), applied as usual."""
        if reverser_for is None or str(body.get("type")) not in ("invoice.paid", "payment_intent.succeeded"):
            return None
        with db.read() as conn:
            seen = event_seen(conn, org_pk, event_id)
            orphan = None if seen else orphan_of(conn, org_pk, env, body)
            reverser = reverser_for(conn, org_pk, env) if orphan is not None else None
        if orphan is None or reverser is None:
            return None
        if not try_acquire(db, org_pk, env, orphan.customer_id, clock.now_ms()):
            return _error(503, "lock_already_exists", "A billing call of this customer is in flight: retry")
        try:
            result = reverse_orphan(db.engine, reverser, orphan.payment, clock.now_ms())
        finally:
            release(db, org_pk, env, orphan.customer_id)
        return None if result == "exists" else f"orphan_{result}"

    def receive(org_id: str, env: str, payload: bytes, signature: str) -> JSONResponse:
        if env not in ENVS:
            return _error(404, "not_found", f"env: must be one of: {', '.join(ENVS)}")
        with db.read() as conn:
            org_pk = org_pk_by_id(conn, org_id)
            config = stripe_config(conn, int(org_pk), env) if org_pk is not None else None
        if org_pk is None or config is None or not config.webhook_secret:
            return _error(404, "not_found", "No Stripe webhook secret for this organization and env")
        try:
            event = stripe.Webhook.construct_event(payload, signature, config.webhook_secret)
        except stripe.SignatureVerificationError:
            return _error(400, "invalid_signature", "Stripe-Signature does not match the payload")
        except ValueError:
            return _error(400, "invalid_inputs", "body: must be a Stripe event")
        body = event.to_dict()
        event_id, kind = str(body.get("id")), str(body.get("type"))
        reconciled = reconcile(int(org_pk), env, event_id, body)
        if isinstance(reconciled, JSONResponse):
            return reconciled
        now = clock.now_ms()
        try:
            with db.write() as conn:
                if event_seen(conn, org_pk, event_id):
                    return JSONResponse({"received": True, "duplicate": True})
                record_event(conn, org_pk, event_id, kind[:64], now)
                result = reconciled or apply_event(
                    conn, int(org_pk), env, body, now, complete_checkout, checkout_completed
                )
        except IntegrityError:  # the same event, applied by a concurrent delivery
            return JSONResponse({"received": True, "duplicate": True})
        if result != "ignored" and on_change is not None:
            on_change()
        return JSONResponse({"received": True, "result": result})

    async def endpoint(request: Request) -> JSONResponse:
        payload = await request.body()
        signature = request.headers.get("stripe-signature", "")
        org_id, env = str(request.path_params["org_id"]), str(request.path_params["env"])
        return await run_in_threadpool(receive, org_id, env, payload, signature)

    return [Route("/webhooks/stripe/{org_id}/{env}", endpoint, methods=["POST"])]
