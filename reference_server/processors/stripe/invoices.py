"""The Stripe invoice behind a server invoice: itemized, finalized, reused for a retry, voided.

Paying it is :mod:`~reference_server.processors.stripe.payments`' part and giving its money back
:mod:`~reference_server.processors.stripe.refunds`'; both read it through :class:`StripeInvoices`.

Customer credit (from prorated downgrades) stays in the server's credit ledger and is spent first;
the part of it an invoice uses is a negative invoice item ("Applied customer credit"), so the Stripe
invoice's lines add up to exactly what the card is charged.  Stripe's own customer balance is not
used for it: Stripe applies that balance to whatever invoice it finalizes next (including ones a
Stripe user creates by hand), so the server ledger and Stripe's could drift apart, and the lines of
an invoice would no longer explain its total.
"""

from __future__ import annotations

import hashlib
from typing import Any

import stripe
from sqlalchemy import Connection

from reference_server.processors.compensation import Reverser, void_after_transaction
from reference_server.processors.stripe.catalog import PlanObjects, StripeCatalog
from reference_server.processors.stripe.metadata import with_server_keys
from reference_server.store.customer_lookup import CustomerRef
from reference_server.store.invoice_lines import invoice_lines_of
from reference_server.store.invoices import InvoiceRecord, set_invoice_status

SEND_INVOICE_DAYS_DUE = 30
"""``days_until_due`` of an invoice-mode Stripe invoice without ``net_terms_days`` (Stripe requires one
for ``send_invoice``)."""


class StripeInvoiceMismatch(RuntimeError):
    """The Stripe invoice built for a server invoice does not total its amount due (a bug, not a decline)."""


def idempotency_key(*parts: str) -> str:
    """A Stripe idempotency key from what makes a call the same call (at most 255 characters)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:48]
    return f"autumn-{parts[0]}-{digest}"


def stripe_invoice_id(processor_id: str | None) -> str | None:
    """The Stripe invoice (``in_...``) a server invoice's processor id names; None for another id
    (none, or a payment's)."""
    stripe_id = str(processor_id or "")
    return stripe_id if stripe_id.startswith("in_") else None


def is_reversed(stripe_invoice: Any) -> bool:
    """Whether the invoice's payment was given back (or is being) because the server never recorded it."""
    metadata = getattr(stripe_invoice, "metadata", None)
    return bool(metadata and metadata.to_dict().get("autumn_reversal"))


class StripeInvoices:
    """The Stripe invoices made through one Stripe client.

    ``reverser`` (the processor) takes back an invoice-mode invoice whose server transaction does not
    commit (:func:`~reference_server.processors.compensation.void_after_transaction`)."""

    def __init__(self, client: stripe.StripeClient, catalog: StripeCatalog, reverser: Reverser) -> None:
        self.client = client
        self.catalog = catalog
        self.reverser = reverser

    def retrieve(self, stripe_id: str) -> Any:
        """The Stripe invoice as it is now, with its payments."""
        return self.client.v1.invoices.retrieve(stripe_id, {"expand": ["payments"]})

    def create(
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
        charged by the server; its metadata is the server's keys over the caller's the server invoice
        carries (``processor_metadata``: the ``metadata`` of the attach that made it);
        ``finalize=False`` (invoice mode only): left a draft, finalized later on Stripe's dashboard.
        A ``send_invoice`` invoice is registered with
        :func:`~reference_server.processors.compensation.void_after_transaction` as soon as Stripe made it,
        so it is voided (or deleted) if the server's transaction does not commit.

        The invoice is created empty (``pending_invoice_items_behavior=exclude``) and every item is
        created on it (``invoice=``), so nothing is left pending for the customer's next invoice.
        Every call carries an idempotency key derived from the server invoice, the amount and the
        Stripe invoice of the previous attempt (see :func:`idempotency_key`), so a call repeated after
        a lost response or a crash (which rolled the server's records back) makes no second invoice
        or item, and the invoice read back at the end is the one the first call made, as it is now
        (a paid one is then recorded, not paid again).
        """
        key = idempotency_key("invoice", invoice.id, str(due), str(invoice.processor_id or ""))
        params: dict[str, Any] = {
            "customer": stripe_customer,
            "currency": invoice.currency,
            "collection_method": "charge_automatically",
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "description": f"Autumn invoice {invoice.id}",
            "metadata": with_server_keys(
                invoice.processor_metadata,  # the attach's ``metadata``, if it made this invoice
                {"autumn_invoice_id": invoice.id, "autumn_customer_id": customer.id},
            ),
        }
        if send_invoice:
            params.update(collection_method="send_invoice", days_until_due=days_until_due)
        draft = self.client.v1.invoices.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
        if send_invoice:  # payable on Stripe: voided unless the server keeps its invoice
            void_after_transaction(conn, self.reverser, customer.pk, invoice.id, str(draft.id), due, now)
        set_invoice_status(conn, invoice.pk, "open" if finalize else "draft", processor_id=str(draft.id))
        self._itemize(conn, customer, stripe_customer, invoice, str(draft.id), invoice.total - due, now)
        if not finalize:
            kept = self.retrieve(str(draft.id))
            if int(kept.total) != due:
                self.client.v1.invoices.delete(str(draft.id))
                raise StripeInvoiceMismatch(
                    f"Stripe draft {draft.id} totals {kept.total}, but {invoice.id} is due {due}"
                )
            return kept
        opened = self.client.v1.invoices.finalize_invoice(
            str(draft.id),
            {"auto_advance": False},
            {"idempotency_key": idempotency_key("finalize", str(draft.id))},
        )
        if int(opened.total) != due or int(opened.amount_due) != due:
            self.client.v1.invoices.void_invoice(str(draft.id))
            raise StripeInvoiceMismatch(
                f"Stripe invoice {draft.id} totals {opened.amount_due}, but {invoice.id} is due {due}"
            )
        return self.retrieve(str(draft.id))

    def _itemize(
        self,
        conn: Connection,
        customer: CustomerRef,
        stripe_customer: str,
        invoice: InvoiceRecord,
        draft_id: str,
        credit: int,
        now: int,
    ) -> None:
        """An item on the draft for each line of ``invoice``; the ``credit`` it spends, a negative one."""
        cache: dict[int, PlanObjects] = {}
        for index, line in enumerate(invoice_lines_of(conn, invoice.pk)):
            item = self.catalog.item_params(conn, customer.pk, line, invoice.currency, now, cache)
            item["metadata"]["autumn_invoice_id"] = invoice.id
            params = {**item, "customer": stripe_customer, "invoice": draft_id}
            self.client.v1.invoice_items.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key("item", draft_id, str(index))},
            )
        if credit > 0:
            self.client.v1.invoice_items.create(
                {
                    "customer": stripe_customer,
                    "invoice": draft_id,
                    "amount": -credit,
                    "currency": invoice.currency,
                    "description": "Applied customer credit",
                    "metadata": {"autumn_invoice_id": invoice.id, "autumn_credit": "applied"},
                },
                {"idempotency_key": idempotency_key("item", draft_id, "credit")},
            )

    def for_attempt(
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
            existing = self.retrieve(current)
            if existing.status == "paid" and not is_reversed(existing):
                return existing  # paid by an attempt whose transaction was lost: recorded now
            if existing.status == "open" and int(existing.amount_due) == due:
                return existing
            self.void_or_delete(current, str(existing.status))
        return self.create(conn, customer, stripe_customer, invoice, due, now)

    def finalize_draft(self, stripe_id: str) -> str:
        """Finalize an invoice-mode draft on Stripe (as the dashboard does); its status afterwards (a
        draft someone already finalized on Stripe is left as it is)."""
        existing = self.retrieve(stripe_id)
        if existing.status != "draft":
            return str(existing.status)
        opened = self.client.v1.invoices.finalize_invoice(
            stripe_id,
            {"auto_advance": False},
            {"idempotency_key": idempotency_key("finalize", stripe_id)},
        )
        return str(opened.status)

    def mark_paid(self, stripe_id: str) -> str | None:
        """An open Stripe invoice is marked ``paid_out_of_band``; None when it is (or was) paid, else
        its Stripe status (void, uncollectible, draft), which refuses it."""
        remote = self.client.v1.invoices.retrieve(stripe_id)
        if remote.status == "open":
            self.client.v1.invoices.pay(stripe_id, {"paid_out_of_band": True})
        elif remote.status != "paid":
            return str(remote.status)
        return None

    def void_open(self, stripe_id: str) -> None:
        """Void an open Stripe invoice (its unfinished PaymentIntent is canceled with it)."""
        if self.retrieve(stripe_id).status == "open":
            self.client.v1.invoices.void_invoice(stripe_id)

    def void_or_delete(self, stripe_id: str, status: str) -> None:
        """Take back an unpaid Stripe invoice of ``status``: an open one is voided, a draft deleted."""
        if status == "open":
            self.client.v1.invoices.void_invoice(stripe_id)
        elif status == "draft":
            self.client.v1.invoices.delete(stripe_id)

    def void_for(self, invoice: InvoiceRecord) -> bool:
        """Void the Stripe invoice of a server invoice being voided; False when Stripe already
        collected it (the server invoice must then stay open: the payment is recorded, not lost)."""
        stripe_id = stripe_invoice_id(invoice.processor_id)
        if stripe_id is None:
            return True
        existing = self.retrieve(stripe_id)
        if existing.status == "paid":
            return is_reversed(existing)
        self.void_or_delete(stripe_id, str(existing.status))
        return True
