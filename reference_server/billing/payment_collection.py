"""Collecting what a billing change makes due: a charge now, a checkout link when the customer must
act, or an invoice-mode invoice; shared by attach, update, multi-attach and schedules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    AttachInvoiceJson,
    AttachRequiredActionJson,
    AttachResponseJson,
)
from autumn_sdk._generated.models import AttachInvoiceMode
from reference_server.billing.invoice_mode import enabled_mode, net_terms_days, plan_starts_now
from reference_server.billing.plan_changes import (
    charge_draft,
    customer_ref,
)
from reference_server.billing.processor_choice import processor_for
from reference_server.billing.sessions import (
    PAYMENT_RETRY_TTL_MS,
    create_checkout_session,
)
from reference_server.engine.billing import BillingRuleError
from reference_server.engine.billing.invoice import InvoiceDraft, LineItem, NextCycle
from reference_server.errors import ApiError
from reference_server.processors.contract import ChargeOutcome
from reference_server.service.context import Ctx
from reference_server.service.maintenance import catch_up
from reference_server.store.billing_sessions import load_session, update_session
from reference_server.store.invoice_drafts import HOSTED_URL_KEY
from reference_server.store.invoices import (
    InvoiceRecord,
    create_invoice,
    invoice_record,
    make_draft,
    set_hosted_url,
    set_net_terms,
)
from reference_server.store.subjects import CustomerRow, EntityRow
from reference_server.store.tables.billing import INVOICE_REASON


def rule_error(exc: BillingRuleError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


def change_response(
    customer: CustomerRow,
    entity_id: str | None,
    payment_url: str | None,
    *,
    required_action: AttachRequiredActionJson | None = None,
    invoice: AttachInvoiceJson | None = None,
) -> AttachResponseJson:
    """A billing change's answer (attach, update, multi-attach; a schedule's first phase): the
    customer (and the entity it is scoped to), the page where the customer must act (None when the
    change happened or waits on its invoice), why a charge needs the customer, and the invoice made."""
    customer_id = customer.id or ""  # (found by the request's customer_id)
    out: AttachResponseJson = (
        {"customer_id": customer_id, "payment_url": payment_url}
        if entity_id is None
        else {"customer_id": customer_id, "entity_id": entity_id, "payment_url": payment_url}
    )
    if required_action is not None:
        out["required_action"] = required_action
    if invoice is not None:
        out["invoice"] = invoice
    return out


def settle_due(ctx: Ctx, customer_id: str) -> None:
    """Commit due maintenance (renewals may charge a card) before a preview that is rolled back."""
    if customer_id:
        catch_up(ctx, customer_id)


def plus_lines(draft: InvoiceDraft, lines: tuple[LineItem, ...]) -> InvoiceDraft:
    return InvoiceDraft(draft.lines + lines, draft.currency) if lines else draft


def cycle_plus_lines(cycle: NextCycle, lines: tuple[LineItem, ...]) -> NextCycle:
    """A plan's next renewal with its pending ``*_next_cycle`` lines, as the renewal invoice has them."""
    return dataclasses.replace(cycle, invoice=plus_lines(cycle.invoice, lines)) if lines else cycle


def checkout_action(ctx: Ctx, op: str, params: BaseModel | None) -> dict[str, Any]:
    """What completing a checkout for ``op`` does, stored with its session: the request as its JSON
    (validated again with ``op``'s params model when the checkout completes)."""
    body = params.model_dump(mode="json", exclude_unset=True) if params is not None else {}
    clean = {k: v for k, v in body.items() if not k.startswith("_")}
    return {
        "op": op,
        "body": clean,
        "org_pk": ctx.tenant.org_pk,
        "env": ctx.tenant.env,
        "reason": op,
        "entity_id": body.get("entity_id"),
    }


def _failed_payment(
    ctx: Ctx,
    conn: Connection,
    customer: CustomerRow,
    outcome: ChargeOutcome,
    draft: InvoiceDraft,
    action: dict[str, Any],
    now: int,
    base_url: str,
    success_url: str | None,
    entity_id: str | None,
) -> AttachResponseJson:
    """A charge that needs the customer: hand out a checkout page that collects this invoice."""
    invoice_pk = outcome.invoice.pk if outcome.invoice is not None else None
    action = {**action, "void_on_expiry": True}
    _, url = create_checkout_session(
        conn, customer.pk, draft, action, now, base_url, success_url, invoice_pk, PAYMENT_RETRY_TTL_MS
    )
    invoice = invoice_record(conn, invoice_pk).to_api() if invoice_pk is not None else None
    return change_response(
        customer, entity_id, url, required_action=outcome.required_action(), invoice=invoice
    )


def charge_or_retry_link(
    ctx: Ctx,
    conn: Connection,
    customer: CustomerRow,
    entity: EntityRow | None,
    draft: InvoiceDraft,
    reason: str,
    now: int,
    base_url: str,
    action: dict[str, Any],
    success_url: str | None,
    metadata: dict[str, str] | None = None,
) -> tuple[InvoiceRecord | None, AttachResponseJson | None]:
    """Charge ``draft`` now: the invoice (None when nothing was due), or the failure response
    (:func:`_failed_payment`) when the customer has to act before the change can happen;
    ``metadata``: the caller's keys for the processor's invoice."""
    processor = processor_for(ctx.state, conn, customer.pk)
    outcome = charge_draft(processor, conn, customer, draft, reason, now, base_url, entity, metadata)
    if outcome is not None and not outcome.succeeded:
        entity_id = entity.id if entity else None
        failure = _failed_payment(
            ctx, conn, customer, outcome, draft, action, now, base_url, success_url, entity_id
        )
        return None, failure
    return (outcome.invoice if outcome is not None else None), None


def invoice_mode_for(invoice_mode: AttachInvoiceMode | None, due: InvoiceDraft) -> AttachInvoiceMode | None:
    """The enabled ``invoice_mode`` of a request when something is due now (else it changes nothing:
    the change happens as without it)."""
    mode = enabled_mode(invoice_mode)
    return mode if mode is not None and due.lines and due.total > 0 else None


def bill_by_invoice(
    ctx: Ctx,
    conn: Connection,
    customer: CustomerRow,
    entity: EntityRow | None,
    due: InvoiceDraft,
    now: int,
    base_url: str,
    op: str,
    params: BaseModel,
    start: Callable[[], None],
    *,
    mode: AttachInvoiceMode,
    enable_plan_immediately: bool | None,
    success_url: str | None,
    metadata: dict[str, str] | None = None,
) -> AttachResponseJson:
    """Invoice mode (attach, multi-attach, a schedule's first phase, update): one invoice for what is due
    now, which the customer pays on its hosted page instead of an automatic charge.

    With ``enable_plan_immediately`` the change happens now (``start``); otherwise paying the invoice
    completes it (the checkout action ``op`` with ``params``, as a paid checkout completes it).
    ``mode`` is the request's enabled ``invoice_mode`` (:func:`invoice_mode_for`).
    The invoice is due ``net_terms_days`` (default 30) after it is finalized.
    ``finalize: false`` keeps the invoice a draft (no hosted URL, its page takes no payment) until it is
    finalized (see :mod:`~reference_server.billing.invoice_mode`).  On Stripe a ``send_invoice`` Stripe
    invoice (voided after the transaction if it does not commit), carrying ``metadata`` (the caller's
    keys for the processor's invoice)."""
    immediately = plan_starts_now(mode, enable_plan_immediately)
    finalize = mode.finalize is not False
    processor = processor_for(ctx.state, conn, customer.pk)
    entity_id = entity.id if entity else None
    record = create_invoice(
        conn,
        customer.pk,
        due,
        INVOICE_REASON,
        processor.name,
        now,
        base_url,
        entity_id,
        processor_metadata=metadata,
    )
    days = net_terms_days(mode)
    set_net_terms(conn, record.pk, days, now if finalize else None)
    action = checkout_action(ctx, "invoice_paid" if immediately else op, params)
    session_id, url = create_checkout_session(
        conn, customer.pk, due, action, now, base_url, success_url, record.pk
    )
    if finalize:
        set_hosted_url(conn, record.pk, url)
    else:  # a draft: no page to pay yet; finalizing gives the invoice this one
        make_draft(conn, record.pk)
        session = load_session(conn, session_id, "checkout")
        assert session is not None
        update_session(conn, session.pk, action={**session.action, HOSTED_URL_KEY: url})
    # the processor's books show the open invoice too (Stripe: a send_invoice invoice)
    processor.open_invoice(conn, customer_ref(customer), record, now, finalize=finalize, net_terms_days=days)
    if immediately:
        start()
    return change_response(customer, entity_id, None, invoice=invoice_record(conn, record.pk).to_api())
