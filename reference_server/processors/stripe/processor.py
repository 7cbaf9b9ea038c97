"""Stripe as the payment processor (the official ``stripe`` package; localstripe in tests).

Customers and cards live in Stripe.  Every server invoice that takes money from a card becomes an
itemized Stripe Invoice on the Stripe customer (see :mod:`~reference_server.processors.stripe.catalog`
for the items, Products and Prices), finalized and paid off-session with the chosen saved card; the
Stripe invoice id is the server invoice's processor id (``invoice.stripe_id`` in the API).  The
server keeps its own invoice records, so previews, pages and the API read the same numbers whichever
processor is used, and its engine drives renewals on its own clock: no Stripe Subscription bills.

Customer credit (from prorated downgrades) stays in the server's credit ledger and is spent first;
the part of it an invoice uses is a negative invoice item ("Applied customer credit"), so the Stripe
invoice's lines add up to exactly what the card is charged.  Stripe's own customer balance is not
used for it: Stripe applies that balance to whatever invoice it finalizes next (including ones a
Stripe user creates by hand), so the server ledger and Stripe's could drift apart, and the lines of
an invoice would no longer explain its total.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import stripe
from sqlalchemy import Connection

from reference_server.processors.compensation import settle_after_transaction, void_after_transaction
from reference_server.processors.contract import (
    CardSetup,
    ChargeOutcome,
    Collected,
    CompletedSetup,
    PaymentProcessor,
    card_failed,
    card_needs_authentication,
    card_succeeded,
    utc_day,
)
from reference_server.processors.local.cards import (
    DECLINE_MESSAGES,
    CardBehavior,
    CardError,
    CardInput,
    check_card,
)
from reference_server.processors.stripe.catalog import PlanObjects, StripeCatalog
from reference_server.processors.stripe.checkout import (
    completed_setup,
    current_session_id,
    expire_if_open,
    open_checkout_for,
    reusable_url,
)
from reference_server.store.billing_sessions import SessionRecord
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.invoice_lines import invoice_lines_of
from reference_server.store.invoices import InvoiceRecord, charge_attempts, set_invoice_status
from reference_server.store.payment_methods import PaymentMethodInfo, store_payment_method
from reference_server.store.stripe_customers import customer_stripe_id, set_customer_stripe_id

log = logging.getLogger(__name__)

LOCAL_TEST_API = ("http://127.0.0.1", "http://localhost")


SEND_INVOICE_DAYS_DUE = 30
"""``days_until_due`` of an invoice-mode Stripe invoice without ``net_terms_days`` (Stripe requires one
for ``send_invoice``)."""


class StripeProcessor(PaymentProcessor):
    """Payments through a Stripe account (``api_base`` points at localstripe in tests)."""

    name = "stripe"
    title = "Stripe"

    def __init__(
        self, secret_key: str, api_base: str | None = None, stripe_account: str | None = None
    ) -> None:
        """``secret_key`` travels with every request of this client (never the global ``stripe.api_key``),
        so processors of different organizations never share a key; ``stripe_account`` acts on a
        connected account with a platform key."""
        base = {"api": api_base} if api_base else None
        self.secret_key = secret_key
        self.stripe_account = stripe_account
        self.client = stripe.StripeClient(
            secret_key,
            stripe_account=stripe_account,
            base_addresses=base,  # type: ignore[arg-type]
        )
        self.api_base = api_base or "https://api.stripe.com"
        self.catalog = StripeCatalog(self.client, secret_key, stripe_account)

    # customers and cards ----------------------------------------------------------------------------------
    def ensure_customer(self, conn: Connection, customer: CustomerRef) -> str | None:
        if customer.processor_id:
            return customer.processor_id
        saved = customer_stripe_id(conn, customer.pk)
        if saved:  # created earlier in this transaction, after ``customer`` was read
            return saved
        params: dict[str, Any] = {"metadata": {"autumn_customer_id": customer.id}}
        if customer.email:
            params["email"] = customer.email
        if customer.name:
            params["name"] = customer.name
        created = self.client.v1.customers.create(params)  # type: ignore[arg-type]
        set_customer_stripe_id(conn, customer.pk, created.id)
        return str(created.id)

    def add_card(self, conn: Connection, customer: CustomerRef, card: CardInput, now: int) -> CardSetup:
        """TEST ONLY: posts a raw card number to Stripe's PaymentMethod API, which real Stripe accounts
        refuse (and which would put the server in PCI scope).  Processor-level tests use it against
        localstripe; the hosted pages never call it for a Stripe organization, whose cards are set up on
        Stripe Checkout (:mod:`~reference_server.processors.stripe.checkout`)."""
        checked = check_card(card, utc_day(now))
        stripe_customer = self.ensure_customer(conn, customer)
        try:
            pm = self.client.v1.payment_methods.create(
                {
                    "type": "card",
                    "card": {
                        "number": checked.number,
                        "exp_month": checked.exp_month,
                        "exp_year": checked.exp_year,
                        "cvc": card.cvc,
                    },
                }
            )
            self.client.v1.payment_methods.attach(pm.id, {"customer": str(stripe_customer)})
        except stripe.CardError as exc:
            raise CardError(
                exc.code or "card_declined", exc.user_message or "Your card was declined."
            ) from exc
        needs_auth = checked.behavior in (CardBehavior.AUTHENTICATE_ONCE, CardBehavior.AUTHENTICATE_ALWAYS)
        if not needs_auth:
            self._make_default(str(stripe_customer), pm.id)
        info = store_payment_method(
            conn,
            customer.pk,
            self.name,
            checked.brand,
            checked.last4,
            checked.exp_month,
            checked.exp_year,
            checked.behavior.value,
            now,
            processor_id=pm.id,
            make_default=not needs_auth,
        )
        return CardSetup(info, needs_auth)

    def _make_default(self, stripe_customer: str, pm_id: str) -> None:
        self.client.v1.customers.update(
            stripe_customer, {"invoice_settings": {"default_payment_method": pm_id}}
        )

    def confirm_card(
        self, conn: Connection, customer: CustomerRef, payment_method: PaymentMethodInfo
    ) -> None:
        stripe_customer = self.ensure_customer(conn, customer)
        if payment_method.processor_id:
            self._make_default(str(stripe_customer), payment_method.processor_id)
        super().confirm_card(conn, customer, payment_method)

    # Stripe Checkout (setup mode) collects the cards: see processors.stripe.checkout -----------------------
    def has_own_card_page(self) -> bool:
        return True

    def card_page_url(
        self,
        conn: Connection,
        customer: CustomerRef,
        session: SessionRecord,
        base_url: str,
        reuse_open: bool = False,
    ) -> str | None:
        """A setup-mode Checkout Session for the server session (the current one while it is open, when
        ``reuse_open``)."""
        url = reusable_url(self.client, current_session_id(conn, session.pk)) if reuse_open else None
        if url is not None:
            return url
        stripe_customer = str(self.ensure_customer(conn, customer))
        return open_checkout_for(conn, self.client, stripe_customer, customer, session, base_url)

    def completed_card_setup(self, setup_id: str) -> CompletedSetup | None:
        return completed_setup(self.client, setup_id)

    def close_card_page(self, conn: Connection, session: SessionRecord) -> None:
        expire_if_open(self.client, current_session_id(conn, session.pk))

    # charges ------------------------------------------------------------------------------------------------
    def _authenticate_in_test_mode(self, intent: Any) -> Any:
        """Complete 3-D Secure the way a browser would; only test servers (localstripe) offer this."""
        response = self.client.raw_request(
            "post",
            f"/v1/payment_intents/{intent.id}/_authenticate",
            client_secret=intent.client_secret,
            success="true",
        )
        return self.client.deserialize(response, api_mode="V1")

    def can_charge(self, payment_method: PaymentMethodInfo) -> bool:
        return payment_method.processor_id is not None

    def _latest_intent(self, stripe_invoice: Any) -> Any | None:
        """The PaymentIntent of the invoice's latest payment attempt, if any."""
        payments = getattr(stripe_invoice, "payments", None)
        data = list(getattr(payments, "data", None) or [])
        intent_id: str | None = None
        if data:
            intent_id = str(data[-1].payment.payment_intent)
        elif getattr(stripe_invoice, "payment_intent", None):
            intent_id = str(stripe_invoice.payment_intent)
        return self.client.v1.payment_intents.retrieve(intent_id) if intent_id else None

    def _retrieve_invoice(self, stripe_id: str) -> Any:
        return self.client.v1.invoices.retrieve(stripe_id, {"expand": ["payments"]})

    def _create_stripe_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        stripe_customer: str,
        invoice: InvoiceRecord,
        due: int,
        now: int,
        send_invoice: bool = False,
        finalize: bool = True,
        days_until_due: int = SEND_INVOICE_DAYS_DUE,
    ) -> Any:
        """An open Stripe invoice itemizing ``invoice`` (credit spent as a negative item), total ``due``;
        ``send_invoice``: one the customer is sent to pay (invoice mode) within ``days_until_due``, else
        charged by the server;
        ``finalize=False`` (invoice mode only): left a draft, finalized later on Stripe's dashboard.
        A ``send_invoice`` invoice is registered with
        :func:`~reference_server.processors.compensation.void_after_transaction` as soon as Stripe made it,
        so it is voided (or deleted) if the server's transaction does not commit.

        The invoice is created empty (``pending_invoice_items_behavior=exclude``) and every item is
        created on it (``invoice=``), so nothing is left pending for the customer's next invoice.
        Every call carries an idempotency key derived from the server invoice, the amount and the
        Stripe invoice of the previous attempt (see :func:`_idempotency`), so a call repeated after
        a lost response or a crash (which rolled the server's records back) makes no second invoice
        or item, and the invoice read back at the end is the one the first call made, as it is now
        (a paid one is then recorded, not paid again).
        """
        key = _idempotency("invoice", invoice.id, str(due), str(invoice.processor_id or ""))
        params: dict[str, Any] = {
            "customer": stripe_customer,
            "currency": invoice.currency,
            "collection_method": "charge_automatically",
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "description": f"Autumn invoice {invoice.id}",
            "metadata": {"autumn_invoice_id": invoice.id, "autumn_customer_id": customer.id},
        }
        if send_invoice:
            params.update(collection_method="send_invoice", days_until_due=days_until_due)
        draft = self.client.v1.invoices.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
        if send_invoice:  # payable on Stripe: voided unless the server keeps its invoice
            void_after_transaction(conn, self, customer.pk, invoice.id, str(draft.id), due, now)
        set_invoice_status(conn, invoice.pk, "open" if finalize else "draft", processor_id=str(draft.id))
        cache: dict[int, PlanObjects] = {}
        for index, line in enumerate(invoice_lines_of(conn, invoice.pk)):
            item = self.catalog.item_params(conn, customer.pk, line, invoice.currency, now, cache)
            item["metadata"]["autumn_invoice_id"] = invoice.id
            params = {**item, "customer": stripe_customer, "invoice": str(draft.id)}
            self.client.v1.invoice_items.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": _idempotency("item", str(draft.id), str(index))},
            )
        credit = invoice.total - due
        if credit > 0:
            self.client.v1.invoice_items.create(
                {
                    "customer": stripe_customer,
                    "invoice": str(draft.id),
                    "amount": -credit,
                    "currency": invoice.currency,
                    "description": "Applied customer credit",
                    "metadata": {"autumn_invoice_id": invoice.id, "autumn_credit": "applied"},
                },
                {"idempotency_key": _idempotency("item", str(draft.id), "credit")},
            )
        if not finalize:
            kept = self._retrieve_invoice(str(draft.id))
            if int(kept.total) != due:
                self.client.v1.invoices.delete(str(draft.id))
                raise StripeInvoiceMismatch(
                    f"Stripe draft {draft.id} totals {kept.total}, but {invoice.id} is due {due}"
                )
            return kept
        opened = self.client.v1.invoices.finalize_invoice(
            str(draft.id),
            {"auto_advance": False},
            {"idempotency_key": _idempotency("finalize", str(draft.id))},
        )
        if int(opened.total) != due or int(opened.amount_due) != due:
            self.client.v1.invoices.void_invoice(str(draft.id))
            raise StripeInvoiceMismatch(
                f"Stripe invoice {draft.id} totals {opened.amount_due}, but {invoice.id} is due {due}"
            )
        return self._retrieve_invoice(str(draft.id))

    def open_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        now: int,
        finalize: bool = True,
        net_terms_days: int = SEND_INVOICE_DAYS_DUE,
    ) -> str:
        """Invoice mode: ``invoice`` itemized and finalized on Stripe as an open ``send_invoice`` invoice
        (Stripe's books show what the customer owes, ``invoice.stripe_id`` names it).  The customer pays
        it on the server's hosted page: the card then pays this same Stripe invoice (or, when the credit
        available changed meanwhile, a new one for the new amount, this one voided).  ``finalize=False``
        (``invoice_mode.finalize: false``): a draft ``send_invoice`` invoice for manual review, finalized
        on Stripe's dashboard (its ``invoice.finalized`` event opens the server invoice) or through
        :meth:`finalize_draft`.  Its ``days_until_due`` is ``net_terms_days`` (Stripe dates it from the
        finalization).  Voided if the transaction does not commit.  The Stripe id."""
        stripe_customer = str(self.ensure_customer(conn, customer))
        opened = self._create_stripe_invoice(
            conn,
            customer,
            stripe_customer,
            invoice,
            invoice.total,
            now,
            send_invoice=True,
            finalize=finalize,
            days_until_due=net_terms_days,
        )
        return str(opened.id)

    def finalize_draft(self, stripe_id: str) -> str:
        """Finalize an invoice-mode draft on Stripe (as the dashboard does); its status afterwards (a
        draft someone already finalized on Stripe is left as it is)."""
        existing = self._retrieve_invoice(stripe_id)
        if existing.status != "draft":
            return str(existing.status)
        opened = self.client.v1.invoices.finalize_invoice(
            stripe_id,
            {"auto_advance": False},
            {"idempotency_key": _idempotency("finalize", stripe_id)},
        )
        return str(opened.status)

    def _stripe_invoice(
        self,
        conn: Connection,
        customer: CustomerRef,
        stripe_customer: str,
        invoice: InvoiceRecord,
        due: int,
        now: int,
    ) -> Any:
        """The Stripe invoice collecting ``due`` for ``invoice``: the one of an earlier attempt while it is
        still open for the same amount, else a new one (an earlier one for another amount is voided:
        the credit available changed between attempts)."""
        current = str(invoice.processor_id or "")
        if current.startswith("in_"):
            existing = self._retrieve_invoice(current)
            if existing.status == "paid" and not _reversed(existing):
                return existing  # paid by an attempt whose transaction was lost: recorded now
            if existing.status == "open" and int(existing.amount_due) == due:
                return existing
            if existing.status == "open":
                self.client.v1.invoices.void_invoice(current)
            elif existing.status == "draft":
                self.client.v1.invoices.delete(current)
        return self._create_stripe_invoice(conn, customer, stripe_customer, invoice, due, now)

    def processor_invoice_id(self, processor_id: str | None) -> str | None:
        """The Stripe invoice (``in_...``) behind a server invoice; None for another id (none, or a
        payment's)."""
        stripe_id = str(processor_id or "")
        return stripe_id if stripe_id.startswith("in_") else None

    def finalize_invoice(self, processor_invoice_id: str) -> None:
        self.finalize_draft(processor_invoice_id)

    def mark_invoice_paid(self, processor_invoice_id: str) -> str | None:
        """An open Stripe invoice is marked ``paid_out_of_band``; None when it is (or was) paid, else
        its Stripe status (void, uncollectible, draft), which refuses it."""
        remote = self.client.v1.invoices.retrieve(processor_invoice_id)
        if remote.status == "open":
            self.client.v1.invoices.pay(processor_invoice_id, {"paid_out_of_band": True})
        elif remote.status != "paid":
            return str(remote.status)
        return None

    def void_stripe_invoice(self, stripe_id: str) -> None:
        """Void an open Stripe invoice (its unfinished PaymentIntent is canceled with it)."""
        if self._retrieve_invoice(stripe_id).status == "open":
            self.client.v1.invoices.void_invoice(stripe_id)

    def void_invoice(self, conn: Connection, invoice: InvoiceRecord) -> bool:
        """Void the Stripe invoice of a server invoice being voided; False when Stripe already
        collected it (the server invoice must then stay open: the payment is recorded, not lost)."""
        stripe_id = str(invoice.processor_id or "")
        if not stripe_id.startswith("in_"):
            return True
        existing = self._retrieve_invoice(stripe_id)
        if existing.status == "paid":
            return _reversed(existing)
        if existing.status == "open":
            self.client.v1.invoices.void_invoice(stripe_id)
        elif existing.status == "draft":
            self.client.v1.invoices.delete(stripe_id)
        return True

    def reverse_payment(self, processor_invoice_id: str, server_invoice_id: str) -> None:
        """Give back a Stripe invoice's payment the server did not record (its transaction did not
        commit, see :mod:`~reference_server.processors.compensation`): a paid invoice is marked
        ``autumn_reversal`` (so no retry of the server invoice takes it as paid) and every payment
        of it refunded in full; an open one is voided.  Idempotent: a refund carries a key derived
        from its PaymentIntent, and a charge already refunded is left alone."""
        existing = self._retrieve_invoice(processor_invoice_id)
        if existing.status in ("open", "draft"):
            self.void_invoice_id(processor_invoice_id, str(existing.status))
            return
        if existing.status != "paid":
            return
        reason = f"Autumn invoice {server_invoice_id} was not recorded: refunded"
        if not _reversed(existing):
            self.client.v1.invoices.update(
                processor_invoice_id, {"metadata": {"autumn_reversal": "refunding"}}
            )
        for intent_id in _paid_intents(existing):
            intent = self.client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]})
            charge = intent.latest_charge
            if charge is None or isinstance(charge, str) or intent.status != "succeeded":
                continue
            left = int(charge.amount) - int(charge.amount_refunded or 0)
            if left <= 0:
                continue
            self.client.v1.refunds.create(
                {
                    "payment_intent": intent_id,
                    "amount": left,
                    "metadata": {"autumn_invoice_id": server_invoice_id, "autumn_reason": "not_recorded"},
                },
                {"idempotency_key": _idempotency("refund", intent_id, str(left))},
            )
        self.client.v1.invoices.update(
            processor_invoice_id, {"metadata": {"autumn_reversal": "refunded"}, "description": reason}
        )

    def refund_payment(self, processor_invoice_id: str, amount: int, refund_id: str) -> None:
        """Refund ``amount`` (minor units) of a paid Stripe invoice as the server's refund ``refund_id``
        (``refund_last_payment``), from its payments in turn.  Idempotent: what Stripe already refunded
        under ``refund_id`` counts, and each refund's idempotency key derives from it.  More than its
        payments have left is not refunded (Stripe would refuse it): logged, not retried."""
        intents = _paid_intents(self._retrieve_invoice(processor_invoice_id))
        left = amount
        for intent_id in intents:
            for made in self.client.v1.refunds.list({"payment_intent": intent_id}).data:
                metadata = made.metadata.to_dict() if made.metadata else {}
                if metadata.get("autumn_refund_id") == refund_id and made.status != "failed":
                    left -= int(made.amount)
        for intent_id in intents:
            if left <= 0:
                return
            intent = self.client.v1.payment_intents.retrieve(intent_id, {"expand": ["latest_charge"]})
            charge = intent.latest_charge
            if charge is None or isinstance(charge, str) or intent.status != "succeeded":
                continue
            part = min(left, int(charge.amount) - int(charge.amount_refunded or 0))
            if part <= 0:
                continue
            self.client.v1.refunds.create(
                {
                    "payment_intent": intent_id,
                    "amount": part,
                    "metadata": {"autumn_refund_id": refund_id, "autumn_reason": "refund_last_payment"},
                },
                {"idempotency_key": _idempotency("refund", refund_id, intent_id, str(part))},
            )
            left -= part
        if left > 0:
            log.warning(
                "refund %s of Stripe invoice %s: %d minor units more than its payments have left",
                refund_id,
                processor_invoice_id,
                left,
            )

    def void_invoice_id(self, stripe_id: str, status: str) -> None:
        if status == "open":
            self.client.v1.invoices.void_invoice(stripe_id)
        elif status == "draft":
            self.client.v1.invoices.delete(stripe_id)

    def _pay(
        self,
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
        attempts = charge_attempts(conn, invoice.pk)
        pending: Any = self._latest_intent(stripe_invoice)
        waiting = pending is not None and pending.status == "requires_action"
        if authenticated and waiting and pending.payment_method == payment_method.processor_id:
            self._authenticate_in_test_mode(pending)  # the payer completed 3-D Secure for this attempt
            return self._retrieve_invoice(str(stripe_invoice.id)), None
        try:
            self.client.v1.invoices.pay(
                str(stripe_invoice.id),
                {"payment_method": str(payment_method.processor_id), "off_session": True},
                {
                    "idempotency_key": _idempotency(
                        "pay", str(stripe_invoice.id), str(payment_method.processor_id), str(attempts)
                    )
                },
            )
        except stripe.CardError as exc:
            if exc.code != REQUIRES_ACTION or not authenticated:
                return self._retrieve_invoice(str(stripe_invoice.id)), exc.code or "card_declined"
            refreshed = self._retrieve_invoice(str(stripe_invoice.id))
            intent = self._latest_intent(refreshed)
            if intent is not None and intent.status == "requires_action":
                self._authenticate_in_test_mode(intent)
        return self._retrieve_invoice(str(stripe_invoice.id)), None

    def collect_card(
        self,
        conn: Connection,
        customer: CustomerRef,
        invoice: InvoiceRecord,
        payment_method: PaymentMethodInfo,
        due: int,
        now: int,
        authenticated: bool,
    ) -> ChargeOutcome | Collected:
        """Itemize the invoice on Stripe and pay it off-session with the saved card."""
        stripe_customer = str(self.ensure_customer(conn, customer))
        stripe_invoice = self._stripe_invoice(conn, customer, stripe_customer, invoice, due, now)
        code: str | None = None
        if stripe_invoice.status != "paid":
            stripe_invoice, code = self._pay(conn, invoice, stripe_invoice, payment_method, authenticated)
        if stripe_invoice.status == "paid":
            # Taken from the card: refunded unless this transaction commits (see compensation).
            paid = int(stripe_invoice.amount_paid or 0)
            settle_after_transaction(conn, self, customer.pk, invoice.id, str(stripe_invoice.id), paid, now)
            return card_succeeded(conn, invoice, payment_method, due, now, str(stripe_invoice.id))
        needs_authentication = False
        if code == REQUIRES_ACTION or code is None:  # read before a void cancels the PaymentIntent
            intent = self._latest_intent(stripe_invoice)
            needs_authentication = intent is not None and intent.status == "requires_action"
        if invoice.reason in VOIDED_ON_FAILURE:
            self.void_stripe_invoice(str(stripe_invoice.id))
        else:  # left open for a retry or 3-D Secure: voided unless this transaction commits
            void_after_transaction(conn, self, customer.pk, invoice.id, str(stripe_invoice.id), due, now)
        if needs_authentication:
            return card_needs_authentication(conn, invoice, payment_method, due, now)
        message = DECLINE_MESSAGES[CardBehavior.DECLINE][1]
        decline = code if code and code != REQUIRES_ACTION else "card_declined"
        return card_failed(conn, invoice, payment_method, due, now, decline, message)


def _idempotency(*parts: str) -> str:
    """A Stripe idempotency key from what makes a call the same call (at most 255 characters)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:48]
    return f"autumn-{parts[0]}-{digest}"


def _reversed(stripe_invoice: Any) -> bool:
    """Whether the invoice's payment was given back (or is being) because the server never recorded it."""
    metadata = getattr(stripe_invoice, "metadata", None)
    return bool(metadata and metadata.to_dict().get("autumn_reversal"))


def _paid_intents(stripe_invoice: Any) -> list[str]:
    """The PaymentIntents of the invoice's successful payments."""
    payments = getattr(stripe_invoice, "payments", None)
    data = list(getattr(payments, "data", None) or [])
    found = [str(p.payment.payment_intent) for p in data if getattr(p, "status", None) == "paid"]
    if not found and getattr(stripe_invoice, "payment_intent", None):
        found = [str(stripe_invoice.payment_intent)]
    return found


REQUIRES_ACTION = "invoice_payment_intent_requires_action"
"""Stripe's error code when paying an invoice off-session needs the customer to authenticate."""

VOIDED_ON_FAILURE = ("seats",)
"""Invoice reasons whose unpaid charge the server voids at once (a seat change that is not paid
is rolled back and its invoice kept voided, see :mod:`~reference_server.billing.seats`): their
Stripe invoice is voided with them."""


class StripeInvoiceMismatch(RuntimeError):
    """The Stripe invoice built for a server invoice does not total its amount due (a bug, not a decline)."""
