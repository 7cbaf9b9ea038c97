"""Invoice-mode invoices kept as drafts (``invoice_mode.finalize: false``) and their finalization.

``billing.attach`` with ``invoice_mode {enabled: true, finalize: false}`` makes the invoice a draft for
manual review, as Autumn does: on Stripe a draft ``send_invoice`` Stripe invoice (not finalized), on
the server an invoice with status ``draft`` whose ``hosted_invoice_url`` is null.  Its hosted checkout
page (made at attach time, with what paying it does) says the invoice is not finalized yet and takes no
payment; the plan starts at once with ``enable_plan_immediately``, else when the invoice is paid.
A draft is not owed yet: no renewal retry collects it and it makes nothing past due.

Finalizing opens it (status ``open``, its hosted page payable from then on):

* on Stripe, in the dashboard: the ``invoice.finalized`` event (or an ``invoice.paid`` that comes first)
  reaches :func:`~reference_server.store.invoice_drafts.finalize_draft` through
  :mod:`~reference_server.processors.stripe.events`; a draft
  deleted or an invoice voided on Stripe voids the server invoice (a plan waiting for it never starts);
* anywhere, through ``POST /v1/invoices.finalize {invoice_id}`` (beyond the spec: Autumn has no such
  call, its users finalize on Stripe's dashboard, which a server on the local processor does not
  have).  ``invoice_id`` is the invoice's ``stripe_id`` as the API shows it (the Stripe invoice id on
  Stripe, the server's own id on the local processor).  On Stripe it finalizes the Stripe invoice too.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import FinalizeInvoiceResponseJson
from autumn_sdk._generated.models import AttachInvoiceMode, FinalizeInvoiceParams
from reference_server.errors import ApiError, invalid
from reference_server.processors.contract import PaymentProcessor
from reference_server.service.context import Ctx
from reference_server.service.invoices import answered_invoice_json
from reference_server.store.invoice_drafts import finalize_draft, is_invoice_mode_draft
from reference_server.store.invoice_pages import invoice_rows_by_pk
from reference_server.store.invoices import InvoiceRecord, invoice_record, tenant_invoice
from reference_server.store.tables.billing import INVOICE_REASON

NO_CARD_TRIAL_OPTIONS = (
    "Invoice mode with a no-card free trial sends a finalized invoice with the default invoice settings "
    "when the trial ends, so finalize: false, invoice_template_id and custom net_terms_days aren't "
    "supported. Drop those options, or require a card for the trial."
)
DEFERRED_DOWNGRADE = (
    "Cannot use invoice mode with deferred activation for downgrades. Downgrades are scheduled for end "
    "of cycle and have no immediate invoice to pay."
)
UPDATE_NO_CARD_TRIAL = (
    "Cannot set invoice mode when updating a no-card free trial (card_required: false). Set invoice "
    "mode when attaching the trial to invoice the customer when it ends, or require a card for the trial."
)


DEFAULT_NET_TERMS_DAYS = 30
"""Days an invoice-mode invoice gives the customer to pay without ``net_terms_days`` (Autumn's default,
Stripe's ``days_until_due``; this server has no organization-wide default or invoice templates)."""
MAX_NET_TERMS_DAYS = 1825
"""The longest ``net_terms_days`` taken (five years; Autumn passes any positive number on to Stripe)."""


def net_terms_days(mode: AttachInvoiceMode) -> int:
    """The days the customer has to pay an invoice-mode invoice (its due date: that many days after it is
    finalized)."""
    return mode.net_terms_days if mode.net_terms_days is not None else DEFAULT_NET_TERMS_DAYS


def _custom_options(mode: AttachInvoiceMode) -> bool:
    """Invoice options that cannot reach the invoice a no-card trial sends when it ends: ``finalize: false``
    or net terms other than the default."""
    custom_terms = mode.net_terms_days is not None and mode.net_terms_days != DEFAULT_NET_TERMS_DAYS
    return mode.finalize is False or custom_terms


def _check_net_terms(mode: AttachInvoiceMode) -> None:
    """``net_terms_days`` beyond :data:`MAX_NET_TERMS_DAYS` is refused (400 ``invalid_inputs``); the spec's
    ``exclusiveMinimum: 0`` already refuses zero and negative ones."""
    if mode.net_terms_days is not None and mode.net_terms_days > MAX_NET_TERMS_DAYS:
        raise invalid(
            f"invoice_mode.net_terms_days: must be at most {MAX_NET_TERMS_DAYS} days", "invalid_inputs"
        )


def enabled_mode(mode: AttachInvoiceMode | None) -> AttachInvoiceMode | None:
    """The request's ``invoice_mode`` when it is enabled, else None."""
    return mode if mode is not None and mode.enabled else None


def plan_starts_now(mode: AttachInvoiceMode, enable_plan_immediately: bool | None) -> bool:
    """``enable_plan_immediately`` (top level or in ``invoice_mode``): the change happens before payment."""
    return bool(mode.enable_plan_immediately or enable_plan_immediately)


def _bills_at_trial_end(card_required: bool | None, on_end: str | None) -> bool:
    """A no-card trial the server runs and bills at its end (not one that reverts)."""
    return card_required is False and on_end != "revert"


def check_attach(
    invoice_mode: AttachInvoiceMode | None,
    enable_plan_immediately: bool | None,
    card_required: bool | None,
    on_end: str | None,
    scheduled: bool,
) -> None:
    """Autumn's invoice-mode validation of one plan being attached (attach, multi-attach, a schedule's
    first phase and their previews): ``card_required``/``on_end`` of the trial the attach starts (None
    without one); ``scheduled``: the plan starts at the period end (a downgrade).

    * a no-card trial billed at its end invoices with the default settings: ``finalize: false`` and
      ``net_terms_days`` other than the default (30) are refused (400 ``invalid_request``);
    * deferred activation (no ``enable_plan_immediately``) of a downgrade has nothing to pay now: refused.
    """
    mode = enabled_mode(invoice_mode)
    if mode is None:
        return
    _check_net_terms(mode)
    if _bills_at_trial_end(card_required, on_end) and _custom_options(mode):
        raise invalid(NO_CARD_TRIAL_OPTIONS)
    if scheduled and not plan_starts_now(mode, enable_plan_immediately):
        raise invalid(DEFERRED_DOWNGRADE)


def check_update(
    invoice_mode: AttachInvoiceMode | None, card_required: bool | None, on_end: str | None
) -> None:
    """Autumn's invoice-mode validation of ``billing.update`` (and its preview): invoice mode is chosen when
    a no-card trial is attached, never set while updating a plan in one (``card_required``/``on_end``
    of the plan's running trial, None without one); ``net_terms_days`` as for attach."""
    mode = enabled_mode(invoice_mode)
    if mode is None:
        return
    if _bills_at_trial_end(card_required, on_end):
        raise invalid(UPDATE_NO_CARD_TRIAL)
    _check_net_terms(mode)


def is_open_invoice_mode_invoice(conn: Connection, invoice_pk: int) -> bool:
    """An open invoice-mode invoice: its page is the invoice's own (``hosted_invoice_url``), payable until
    the invoice is paid or voided, as Stripe's hosted invoice page is; no checkout window applies (the
    invoice is sent with net terms, paying it days later is the point)."""
    invoice = invoice_record(conn, invoice_pk)
    return invoice.status == "open" and invoice.reason == INVOICE_REASON


ProcessorOf = Callable[[Connection, int], PaymentProcessor]
"""The payment processor of a customer (by pk)."""


def finalize_invoice(
    ctx: Ctx, params: FinalizeInvoiceParams, processor_of: ProcessorOf
) -> FinalizeInvoiceResponseJson:
    """``POST /v1/invoices.finalize {invoice_id}``: finalize an invoice-mode draft (see the module docs)."""
    invoice_id = params.invoice_id
    if not invoice_id:
        raise invalid("invoice_id: Required", "invalid_inputs")
    with ctx.db.write() as conn:
        found = tenant_invoice(conn, invoice_id, ctx.tenant.org_pk, ctx.tenant.env)
        if found is None:
            raise ApiError(404, "invoice_not_found", f"Invoice {invoice_id} not found")
        row, customer_id = found
        if row.status in ("open", "paid"):  # finalized already: returned unchanged, as Autumn does
            return _finalized_answer(conn, row, customer_id)
        if not is_invoice_mode_draft(row):
            raise ApiError(
                409,
                "invoice_not_draft",
                f"Invoice {invoice_id} is {row.status}: only a draft can be finalized "
                "(an open or paid one is returned unchanged)",
            )
        processor = processor_of(conn, row.customer_pk)
        processor_invoice_id = processor.processor_invoice_id(row.processor_id)
        if processor_invoice_id is not None:  # the processor's own draft (Stripe's) is finalized too
            processor.finalize_invoice(processor_invoice_id)
        finalize_draft(conn, row.pk, ctx.state.clock.now_ms())
        return _finalized_answer(conn, row, customer_id)


def _finalized_answer(conn: Connection, row: InvoiceRecord, customer_id: str) -> FinalizeInvoiceResponseJson:
    """The invoice as invoices.list shows it (id, customer, amounts paid and refunded), the shape the
    official SDK's InvoicesFinalize model reads; customer_id and entity_id beside it are this server's
    (codegen/overlay.py)."""
    invoice = answered_invoice_json(invoice_rows_by_pk(conn, [row.pk])[row.pk])
    if row.entity_id is not None:
        return {"customer_id": customer_id, "entity_id": row.entity_id, "invoice": invoice}
    return {"customer_id": customer_id, "invoice": invoice}


__all__ = [
    "DEFAULT_NET_TERMS_DAYS",
    "DEFERRED_DOWNGRADE",
    "MAX_NET_TERMS_DAYS",
    "NO_CARD_TRIAL_OPTIONS",
    "UPDATE_NO_CARD_TRIAL",
    "check_attach",
    "check_update",
    "enabled_mode",
    "finalize_invoice",
    "net_terms_days",
    "plan_starts_now",
]
