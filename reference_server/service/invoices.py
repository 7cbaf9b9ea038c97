"""``invoices.list`` and ``invoices.insert``; and an invoice as each answer shows it, built from one
:class:`~reference_server.store.invoice_pages.InvoiceRow`: listed, in ``customer.invoices``, and in
the answers of ``invoices.finalize``, ``invoices.void`` and ``invoices.pay``.

The list pages through every invoice of the org env, newest first (``created_at`` then insertion),
filtered by customer, entity, status and processor.  The insert records up to 500 historical invoices
given from outside, as Autumn does: rows written as given, upserted on their ``stripe_id``, never read
from or written to a billing processor (no Stripe call, no charge, no webhook).
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import NotRequired, TypedDict

from autumn_sdk._generated.json_types import (
    CreateInvoiceInvoiceJson,
    CustomerInvoiceJson,
    InsertInvoicesResponseInvoiceJson,
    InsertInvoicesResponseJson,
    ListInvoicesItemJson,
    ListInvoicesResponseJson,
)
from autumn_sdk._generated.models import InsertInvoicesParams, ListInvoicesParams
from reference_server.engine.billing.money import major_to_minor, minor_to_json
from reference_server.errors import customer_not_found, entity_not_found, invalid
from reference_server.service.context import Ctx
from reference_server.store import imported_billing, invoice_pages
from reference_server.store.ids import new_id
from reference_server.store.imported_billing import InvoiceValues
from reference_server.store.invoice_pages import InvoiceRow
from reference_server.store.subjects import get_customer

MAX_LIMIT = 5000
MAX_INSERT = 500
DEFAULT_CURRENCY = "usd"


def _amount(minor: int, currency: str) -> int | float:
    return minor_to_json(minor, currency)


_PROCESSORS: dict[str, Literal["stripe", "revenuecat"]] = {"stripe": "stripe", "revenuecat": "revenuecat"}
"""A stored invoice's processor (invoices.insert takes only these; the server's own are Stripe's)."""


class _NetTerms(TypedDict, total=False, closed=True):
    """An invoice-mode invoice's terms (store.invoices.net_terms_json), the tail of every invoice shown."""

    net_terms_days: int
    due_at: int | float | None


def _net_terms(row: InvoiceRow) -> _NetTerms:
    """``row``'s terms when it is an invoice-mode invoice, else nothing."""
    if row.net_terms_days is None:
        return {}
    return {"net_terms_days": row.net_terms_days, "due_at": row.due_at}


class _InvoiceJson(TypedDict, closed=True):
    """An invoice as ``invoices.list`` lists it and the invoice actions answer it. Closed (no other keys),
    so it unpacks into either operation's generated ``TypedDict``, whose ``processor_type`` types differ
    (TypedDict fields are invariant: neither generated type is assignable to the other)."""

    id: str
    customer_id: str | None
    entity_id: str | None
    plan_ids: list[str]
    stripe_id: str
    processor_type: Literal["stripe", "revenuecat"]
    status: str
    total: int | float
    amount_paid: int | float | None
    refunded_amount: int | float
    currency: str
    created_at: int | float
    hosted_invoice_url: str | None
    net_terms_days: NotRequired[int]
    due_at: NotRequired[int | float | None]


def _invoice_json(row: InvoiceRow) -> _InvoiceJson:
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "entity_id": row.entity_id,
        "plan_ids": row.plan_ids,
        "stripe_id": row.stripe_id,
        "processor_type": _PROCESSORS[row.processor_type],
        "status": row.status,
        "total": _amount(row.total, row.currency),
        "amount_paid": _amount(row.amount_paid, row.currency) if row.amount_paid is not None else None,
        "refunded_amount": _amount(row.refunded_amount, row.currency),
        "currency": row.currency,
        "created_at": row.created_at,
        "hosted_invoice_url": row.hosted_invoice_url,
        **_net_terms(row),
    }


def invoice_json(row: InvoiceRow) -> ListInvoicesItemJson:
    """An invoice as ``invoices.list`` lists it."""
    return {**_invoice_json(row)}


def answered_invoice_json(row: InvoiceRow) -> CreateInvoiceInvoiceJson:
    """An invoice as ``invoices.finalize``, ``invoices.void`` and ``invoices.pay`` answer it: as
    :func:`invoice_json` lists it, typed as the spec's ``invoice`` of those operations (whose
    ``processor_type`` is any string)."""
    return {**_invoice_json(row)}


def customer_invoice_json(row: InvoiceRow) -> CustomerInvoiceJson:
    """An invoice as ``customer.invoices`` lists it (``expand: ["invoices"]``): the listed invoice
    without its id, customer, entity and amounts paid and refunded."""
    return {
        "plan_ids": row.plan_ids,
        "stripe_id": row.stripe_id,
        "processor_type": _PROCESSORS[row.processor_type],
        "status": row.status,
        "total": _amount(row.total, row.currency),
        "currency": row.currency,
        "created_at": row.created_at,
        "hosted_invoice_url": row.hosted_invoice_url,
        **_net_terms(row),
    }


def _inserted_json(row: InvoiceRow, customer_id: str) -> InsertInvoicesResponseInvoiceJson:
    """An invoice invoices.insert wrote, as it answers it: the listed invoice without ``entity_id``."""
    listed = invoice_json(row)
    out: InsertInvoicesResponseInvoiceJson = {
        "id": listed["id"],
        "customer_id": customer_id,
        "plan_ids": listed["plan_ids"],
        "stripe_id": listed["stripe_id"],
        "status": listed["status"],
        "total": listed["total"],
        "amount_paid": listed["amount_paid"],
        "refunded_amount": listed["refunded_amount"],
        "currency": listed["currency"],
        "created_at": listed["created_at"],
    }
    if "processor_type" in listed:
        out["processor_type"] = listed["processor_type"]
    if "hosted_invoice_url" in listed:
        out["hosted_invoice_url"] = listed["hosted_invoice_url"]
    if "net_terms_days" in listed:
        out["net_terms_days"] = listed["net_terms_days"]
    if "due_at" in listed:
        out["due_at"] = listed["due_at"]
    return out


def list_invoices(ctx: Ctx, params: ListInvoicesParams) -> ListInvoicesResponseJson:
    limit = params.limit or 50
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"limit: must be between 1 and {MAX_LIMIT}", "invalid_inputs")
    customer_id = params.customer_id
    entity_id = params.entity_id
    if entity_id and not customer_id:
        raise invalid("entity_id filter requires customer_id", "invalid_inputs")
    after = None
    if params.start_cursor:
        after = invoice_pages.decode_invoice_cursor(params.start_cursor)
        if after is None:
            raise invalid("start_cursor: invalid cursor", "invalid_inputs")
    with ctx.db.read() as conn:
        customer_pk = None
        if customer_id:
            customer = get_customer(conn, ctx.tenant, customer_id)
            if customer is None:
                raise customer_not_found(customer_id)
            customer_pk = customer.pk
            if entity_id and not imported_billing.entity_exists(conn, customer.pk, entity_id):
                raise entity_not_found(entity_id)
        rows, more = invoice_pages.list_invoice_page(
            conn,
            ctx.tenant.org_pk,
            ctx.tenant.env,
            limit=limit,
            after=after,
            customer_pk=customer_pk,
            entity_id=entity_id or None,
            statuses=params.status or None,
            processor_types=params.processor_types or None,
            invoice_id=params.invoice_id,
            stripe_id=params.stripe_id,
        )
    next_cursor = (
        invoice_pages.encode_invoice_cursor(rows[-1].created_at, rows[-1].pk) if more and rows else None
    )
    return {"list": [invoice_json(r) for r in rows], "next_cursor": next_cursor}


def _minor(value: int | float, currency: str, field: str) -> int:
    if value != value or value in (float("inf"), float("-inf")):
        raise invalid(f"{field}: expected a finite number", "invalid_inputs")
    return major_to_minor(value, currency)


def insert_invoices(ctx: Ctx, params: InsertInvoicesParams) -> InsertInvoicesResponseJson:
    given = params.invoices
    if len(given) > MAX_INSERT:
        raise invalid(f"invoices: at most {MAX_INSERT} invoices per request", "invalid_inputs")
    if not given:
        return {"invoices": []}
    stripe_ids = [inv.stripe_id for inv in given]
    if len(set(stripe_ids)) != len(stripe_ids):
        raise invalid("Duplicate stripe_id values are not allowed in one batch")
    if any(not sid for sid in stripe_ids):
        raise invalid("stripe_id: must not be empty", "invalid_inputs")
    customer_ids = sorted({inv.customer_id for inv in given})
    plan_ids = sorted({p for inv in given for p in inv.plan_ids or []})
    with ctx.db.write() as conn:
        by_customer = imported_billing.customer_pks_by_id(
            conn, ctx.tenant.org_pk, ctx.tenant.env, customer_ids
        )
        missing = [c for c in customer_ids if c not in by_customer]
        if missing:
            raise invalid(f"Customers not found: {', '.join(missing)}")
        cat = ctx.state.catalog_cache.get(conn, ctx.tenant)
        unknown = [p for p in plan_ids if p not in cat.plans]
        if unknown:
            raise invalid(f"Plans not found: {', '.join(unknown)}")
        existing: dict[str, int] = {}
        for found in imported_billing.invoices_by_stripe_id(conn, stripe_ids):
            if found.org_pk != ctx.tenant.org_pk or found.env != ctx.tenant.env:
                raise invalid(f"Invoice {found.stripe_id} belongs to another organization or environment")
            existing.setdefault(found.stripe_id, found.pk)
        now = ctx.now()
        pks: list[int] = []
        for position, inv in enumerate(given):
            currency = (inv.currency or DEFAULT_CURRENCY).lower()
            where = f"invoices[{position}]"
            paid = inv.amount_paid
            values = InvoiceValues(
                id=new_id("inv"),
                customer_pk=by_customer[inv.customer_id],
                plan_ids=list(inv.plan_ids or []),
                stripe_id=inv.stripe_id,
                processor_type=inv.processor_type or invoice_pages.DEFAULT_PROCESSOR,
                status=inv.status,
                total=_minor(inv.total, currency, f"{where}.total"),
                amount_paid=_minor(paid, currency, f"{where}.amount_paid") if paid is not None else None,
                refunded_amount=_minor(inv.refunded_amount or 0, currency, f"{where}.refunded_amount"),
                currency=currency,
                created_at=int(inv.created_at),
                hosted_invoice_url=inv.hosted_invoice_url,
            )
            pks.append(
                imported_billing.upsert_imported_invoice(conn, existing.get(values.stripe_id), values, now)
            )
        rows = invoice_pages.invoice_rows_by_pk(conn, pks)
    return {
        "invoices": [_inserted_json(rows[pk], inv.customer_id) for pk, inv in zip(pks, given, strict=True)]
    }
