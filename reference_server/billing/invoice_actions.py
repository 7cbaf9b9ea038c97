"""Autumn's ``invoices.void`` and ``invoices.pay`` on this server's invoices, through their processor.

``invoices.void``: an open invoice-mode invoice (``billing.attach`` / ``billing.update`` with
``invoice_mode``) is voided on its processor (the Stripe invoice voided, or nothing to do for the local
processor) and here; its hosted page can no longer pay it and the plan waiting on it never starts.
Other open invoices (a renewal that failed, a charge in progress) stay with the flows that own them:
voiding them is refused.  An invoice already void is answered as it is.

``invoices.pay``: an open invoice marked paid out of band (no charge; on Stripe, the Stripe invoice is
marked ``paid_out_of_band``), exactly as a payment arriving for it would: its checkout completes (the
plan waiting on an invoice-mode invoice starts) and, with no unpaid renewal left, its subscriptions are
no longer past due.  Both hold the customer's billing lock, as billing changes do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    CreateInvoiceResponseJson,
    IssueCreditNoteResponseJson,
    ListInvoiceTemplatesResponseJson,
    PayInvoiceResponseJson,
    ReissueInvoiceResponseJson,
)
from autumn_sdk._generated.models import (
    CreateInvoiceParams,
    IssueCreditNoteParams,
    ListInvoiceTemplatesParams,
    PayInvoiceParams,
    ReissueInvoiceParams,
    UpdateInvoiceParams,
    VoidInvoiceParams,
)
from reference_server.errors import ApiError, invalid
from reference_server.processors.contract import PaymentProcessor
from reference_server.processors.stripe.events import CompleteCheckout, payment_succeeded
from reference_server.service.context import Ctx
from reference_server.service.invoices import answered_invoice_json
from reference_server.store.billing_lock import billing_lock
from reference_server.store.invoice_drafts import void_unpaid
from reference_server.store.invoice_pages import invoice_rows_by_pk
from reference_server.store.invoices import clear_processor_id, invoice_record, locked_invoice, tenant_invoice
from reference_server.store.tables.billing import INVOICE_REASON


def _invoice_id(params: VoidInvoiceParams | PayInvoiceParams) -> str:
    invoice_id = params.invoice_id
    if not invoice_id:
        raise invalid("invoice_id: Required", "invalid_inputs")
    return invoice_id


def _customer_of(ctx: Ctx, invoice_id: str) -> tuple[int, str]:
    """The invoice's pk and its customer's id (the billing lock's key); 404 when not this env's."""
    with ctx.db.read() as conn:
        found = tenant_invoice(conn, invoice_id, ctx.tenant.org_pk, ctx.tenant.env)
    if found is None:
        raise ApiError(404, "invoice_not_found", f"Invoice {invoice_id} not found")
    invoice, customer_id = found
    return invoice.pk, customer_id


def invoice_customer(ctx: Ctx, params: VoidInvoiceParams | PayInvoiceParams) -> str:
    """The id of the customer whose billing lock ``invoices.void`` or ``invoices.pay`` takes."""
    return _customer_of(ctx, _invoice_id(params))[1]


def _answer(conn: Connection, invoice_pk: int) -> PayInvoiceResponseJson:
    return {"invoice": answered_invoice_json(invoice_rows_by_pk(conn, [invoice_pk])[invoice_pk])}


@dataclass(frozen=True)
class InvoiceActions:
    processor_of: Callable[[Connection, int], PaymentProcessor]
    """The payment processor of a customer (by pk)."""
    complete: CompleteCheckout | None
    """What a paid checkout was for (an attach paid by invoice...), as a payment's arrival does it."""

    def void(self, ctx: Ctx, params: VoidInvoiceParams) -> PayInvoiceResponseJson:
        invoice_id = _invoice_id(params)
        invoice_pk, customer_id = _customer_of(ctx, invoice_id)
        lock = billing_lock(ctx.db, ctx.tenant.org_pk, ctx.tenant.env, customer_id, ctx.now())
        with lock, ctx.db.write() as conn:
            row = locked_invoice(conn, invoice_pk)
            if row.status == "void":
                return _answer(conn, invoice_pk)
            if row.status != "open" or row.reason != INVOICE_REASON:
                raise ApiError(
                    409,
                    "invoice_not_voidable",
                    f"Invoice {invoice_id} is {row.status}: only an open invoice-mode invoice can be "
                    "voided here (a draft is finalized first; renewals and charges settle through "
                    "their own flows)",
                )
            processor = self.processor_of(conn, row.customer_pk)
            if not processor.void_invoice(conn, invoice_record(conn, invoice_pk)):
                raise ApiError(
                    409,
                    "invoice_already_paid",
                    f"Invoice {invoice_id} was already paid on the payment processor; its payment "
                    "is recorded when the processor's event arrives",
                )
            void_unpaid(conn, invoice_pk, ctx.now())
            return _answer(conn, invoice_pk)

    def pay(self, ctx: Ctx, params: PayInvoiceParams) -> PayInvoiceResponseJson:
        invoice_id = _invoice_id(params)
        invoice_pk, customer_id = _customer_of(ctx, invoice_id)
        lock = billing_lock(ctx.db, ctx.tenant.org_pk, ctx.tenant.env, customer_id, ctx.now())
        with lock, ctx.db.write() as conn:
            row = locked_invoice(conn, invoice_pk)
            if row.status == "paid":
                return _answer(conn, invoice_pk)
            if row.status != "open":
                raise ApiError(
                    409,
                    "invoice_not_open",
                    f"Invoice {invoice_id} is {row.status}: only an open invoice can be marked paid",
                )
            processor = self.processor_of(conn, row.customer_pk)
            processor_invoice_id = processor.processor_invoice_id(row.processor_id)
            if processor_invoice_id is not None:  # the processor's own invoice (Stripe's) is paid too
                refused = processor.mark_invoice_paid(processor_invoice_id)
                if refused is not None:
                    raise ApiError(
                        409,
                        "invoice_not_open",
                        f"Invoice {invoice_id} is {refused} on {processor.title}: it can't be marked paid",
                    )
            # as a payment of the whole invoice arriving; the invoice keeps its processor id (none
            # for the local processor's: payment_succeeded would record the payment's id there)
            payment = {"amount_paid": row.total, "id": row.processor_id}
            payment_succeeded(conn, row, payment, ctx.now(), self.complete)
            if row.processor_id is None:
                clear_processor_id(conn, invoice_pk)
            return _answer(conn, invoice_pk)


def _actions(ctx: Ctx, name: str) -> InvoiceActions:
    actions = ctx.state.billing.invoice_actions
    if not isinstance(actions, InvoiceActions):
        raise ApiError(501, "not_implemented", f"{name} needs the paid billing module")
    return actions


def void_invoice(ctx: Ctx, params: VoidInvoiceParams) -> PayInvoiceResponseJson:
    """``invoices.void``: void an open invoice-mode invoice on its processor and here."""
    return _actions(ctx, "invoices.void").void(ctx, params)


def pay_invoice(ctx: Ctx, params: PayInvoiceParams) -> PayInvoiceResponseJson:
    """``invoices.pay``: mark an open invoice paid out of band (no charge is attempted)."""
    return _actions(ctx, "invoices.pay").pay(ctx, params)


UNSUPPORTED: dict[str, str] = {
    "invoices.create": "this server makes invoices only from billing changes (a send-invoice invoice: "
    "billing.attach or billing.update with invoice_mode)",
    "invoices.update": "its invoices have no payment method types to choose: they are paid by card "
    "through the payment processor",
    "invoices.reissue": "it has no invoice templates or due dates; void the invoice with invoices.void "
    "and bill again with invoice_mode",
    "invoices.issue_credit_note": "it issues no credit notes; credit and refunds come from billing changes",
    "invoices.list_templates": "it has no invoice templates",
}
"""The official SDK's invoice operations this server refuses, and why."""


def _refuse(name: str) -> NoReturn:
    raise ApiError(
        400,
        "unsupported_operation",
        f"{name} is part of Autumn's API but the reference server does not support it: " + UNSUPPORTED[name],
    )


def create_invoice(ctx: Ctx, params: CreateInvoiceParams) -> CreateInvoiceResponseJson:
    """``invoices.create``: refused (400 ``unsupported_operation``)."""
    _refuse("invoices.create")


def update_invoice(ctx: Ctx, params: UpdateInvoiceParams) -> PayInvoiceResponseJson:
    """``invoices.update``: refused (400 ``unsupported_operation``)."""
    _refuse("invoices.update")


def reissue_invoice(ctx: Ctx, params: ReissueInvoiceParams) -> ReissueInvoiceResponseJson:
    """``invoices.reissue``: refused (400 ``unsupported_operation``)."""
    _refuse("invoices.reissue")


def issue_credit_note(ctx: Ctx, params: IssueCreditNoteParams) -> IssueCreditNoteResponseJson:
    """``invoices.issue_credit_note``: refused (400 ``unsupported_operation``)."""
    _refuse("invoices.issue_credit_note")


def list_invoice_templates(ctx: Ctx, params: ListInvoiceTemplatesParams) -> ListInvoiceTemplatesResponseJson:
    """``invoices.list_templates``: refused (400 ``unsupported_operation``)."""
    _refuse("invoices.list_templates")
