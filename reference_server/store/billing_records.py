"""Bookkeeping shared by every processor: invoices, lines, charges, credits, payment methods, sessions.

The reference server keeps its own copy of every invoice even when Stripe is the processor, so the
portal, the API's invoice lists and the webhooks read one place.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from reference_server.engine.billing.invoice import InvoiceDraft, LineItem, LineKind
from reference_server.engine.billing.money import minor_to_json
from reference_server.engine.billing.periods import Period
from reference_server.store.tables.billing import (
    INVOICE_REASON,
    RETRYABLE_REASONS,
    billing_sessions,
    charges,
    credit_ledger,
    invoice_lines,
    invoices,
    payment_methods,
)
from reference_server.store.tables.core import customers
from reference_server.store.tables.imports import imported_invoices


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class CustomerRef:
    """The customer a processor acts for (core ``customers`` row)."""

    pk: int
    id: str
    email: str | None = None
    name: str | None = None
    processor_id: str | None = None


@dataclass(frozen=True)
class PaymentMethodInfo:
    pk: int
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    behavior: str
    processor_id: str | None

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "card",
            "card": {
                "brand": self.brand,
                "last4": self.last4,
                "exp_month": self.exp_month,
                "exp_year": self.exp_year,
            },
        }


@dataclass(frozen=True)
class InvoiceRecord:
    pk: int
    id: str
    status: str
    total: int
    currency: str
    hosted_url: str | None
    processor_id: str | None
    created_at: int

    def to_api(self) -> dict[str, Any]:
        """The attach response's ``invoice`` object (total in major units)."""
        return {
            "status": self.status,
            "stripe_id": self.processor_id or self.id,
            "total": minor_to_json(self.total, self.currency),
            "currency": self.currency,
            "hosted_invoice_url": self.hosted_url,
        }


def _pm_from_row(row: Any) -> PaymentMethodInfo:
    return PaymentMethodInfo(
        row.pk, row.id, row.brand, row.last4, row.exp_month, row.exp_year, row.behavior, row.processor_id
    )


def default_payment_method(conn: Connection, customer_pk: int) -> PaymentMethodInfo | None:
    row = conn.execute(
        select(payment_methods)
        .where(payment_methods.c.customer_pk == customer_pk, payment_methods.c.is_default.is_(True))
        .order_by(payment_methods.c.pk.desc())
        .limit(1)
    ).first()
    return _pm_from_row(row) if row is not None else None


def payment_method_by_pk(conn: Connection, pk: int) -> PaymentMethodInfo | None:
    row = conn.execute(select(payment_methods).where(payment_methods.c.pk == pk)).first()
    return _pm_from_row(row) if row is not None else None


def store_payment_method(
    conn: Connection,
    customer_pk: int,
    processor: str,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    behavior: str,
    now: int,
    processor_id: str | None = None,
    make_default: bool = True,
) -> PaymentMethodInfo:
    if make_default:
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.customer_pk == customer_pk)
            .values(is_default=False)
        )
    pm_id = new_id("pm")
    pk = conn.execute(
        insert(payment_methods)
        .values(
            id=pm_id,
            customer_pk=customer_pk,
            processor=processor,
            processor_id=processor_id,
            brand=brand,
            last4=last4,
            exp_month=exp_month,
            exp_year=exp_year,
            behavior=behavior,
            is_default=make_default,
            created_at=now,
        )
        .returning(payment_methods.c.pk)
    ).scalar_one()
    return PaymentMethodInfo(pk, pm_id, brand, last4, exp_month, exp_year, behavior, processor_id)


def set_payment_method_behavior(conn: Connection, pm_pk: int, behavior: str, make_default: bool) -> None:
    values: dict[str, Any] = {"behavior": behavior}
    if make_default:
        row = conn.execute(select(payment_methods.c.customer_pk).where(payment_methods.c.pk == pm_pk)).one()
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.customer_pk == row.customer_pk)
            .values(is_default=False)
        )
        values["is_default"] = True
    conn.execute(update(payment_methods).where(payment_methods.c.pk == pm_pk).values(**values))


def credit_balance(conn: Connection, customer_pk: int, currency: str) -> int:
    """Customer credit available (minor units) from earlier prorated credits."""
    total = conn.execute(
        select(func.coalesce(func.sum(credit_ledger.c.amount), 0)).where(
            credit_ledger.c.customer_pk == customer_pk, credit_ledger.c.currency == currency
        )
    ).scalar_one()
    return int(total)


def add_credit(
    conn: Connection,
    customer_pk: int,
    currency: str,
    amount: int,
    description: str,
    now: int,
    invoice_pk: int | None,
) -> None:
    conn.execute(
        insert(credit_ledger).values(
            customer_pk=customer_pk,
            currency=currency,
            amount=amount,
            invoice_pk=invoice_pk,
            description=description,
            created_at=now,
        )
    )


def _line_row(invoice_pk: int, position: int, line: LineItem) -> dict[str, Any]:
    return {
        "invoice_pk": invoice_pk,
        "position": position,
        "kind": line.kind.value,
        "display_name": line.display_name,
        "description": line.description,
        "amount": line.amount,
        "plan_id": line.plan_id,
        "feature_id": line.feature_id,
        "quantity": str(line.quantity),
        "period_start": line.period.start if line.period else None,
        "period_end": line.period.end if line.period else None,
    }


def create_invoice(
    conn: Connection,
    customer_pk: int,
    draft: InvoiceDraft,
    reason: str,
    processor: str,
    now: int,
    base_url: str,
    entity_id: str | None = None,
    processor_id: str | None = None,
) -> InvoiceRecord:
    """Insert an open invoice with its lines; the hosted page lives at ``{base_url}/invoices/{id}``."""
    invoice_id = new_id("in")
    hosted_url = f"{base_url.rstrip('/')}/invoices/{invoice_id}"
    pk = conn.execute(
        insert(invoices)
        .values(
            id=invoice_id,
            customer_pk=customer_pk,
            entity_id=entity_id,
            status="open",
            reason=reason,
            currency=draft.currency,
            subtotal=draft.total,
            total=draft.total,
            amount_paid=0,
            credit_applied=0,
            plan_ids=sorted({line.plan_id for line in draft.lines}),
            processor=processor,
            processor_id=processor_id,
            hosted_url=hosted_url,
            created_at=now,
        )
        .returning(invoices.c.pk)
    ).scalar_one()
    if draft.lines:
        conn.execute(insert(invoice_lines), [_line_row(pk, i, line) for i, line in enumerate(draft.lines)])
    return InvoiceRecord(pk, invoice_id, "open", draft.total, draft.currency, hosted_url, processor_id, now)


def set_invoice_status(
    conn: Connection,
    invoice_pk: int,
    status: str,
    now: int | None = None,
    amount_paid: int | None = None,
    credit_applied: int | None = None,
    processor_id: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status}
    if status == "paid":
        values["paid_at"] = now
    if amount_paid is not None:
        values["amount_paid"] = amount_paid
    if credit_applied is not None:
        values["credit_applied"] = credit_applied
    if processor_id is not None:
        values["processor_id"] = processor_id
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(**values))


def record_charge(
    conn: Connection,
    invoice_pk: int,
    payment_method_pk: int | None,
    amount: int,
    status: str,
    now: int,
    failure_code: str | None = None,
    failure_message: str | None = None,
) -> str:
    charge_id = new_id("ch")
    conn.execute(
        insert(charges).values(
            id=charge_id,
            invoice_pk=invoice_pk,
            payment_method_pk=payment_method_pk,
            amount=amount,
            status=status,
            failure_code=failure_code,
            failure_message=failure_message,
            created_at=now,
        )
    )
    return charge_id


@dataclass(frozen=True)
class InvoiceSnapshot:
    """An invoice's rows (with its lines and charge attempts), kept across a rollback."""

    invoice: dict[str, Any]
    lines: list[dict[str, Any]]
    charges: list[dict[str, Any]]


def snapshot_invoice(conn: Connection, invoice_pk: int) -> InvoiceSnapshot:
    """Copy an invoice's rows before the transaction part that created it is rolled back."""
    return InvoiceSnapshot(
        dict(conn.execute(select(invoices).where(invoices.c.pk == invoice_pk)).one()._mapping),
        [
            dict(r._mapping)
            for r in conn.execute(select(invoice_lines).where(invoice_lines.c.invoice_pk == invoice_pk))
        ],
        [dict(r._mapping) for r in conn.execute(select(charges).where(charges.c.invoice_pk == invoice_pk))],
    )


def restore_voided(conn: Connection, snapshot: InvoiceSnapshot) -> InvoiceRecord:
    """Write a rolled-back invoice back as ``void``: the failed attempt stays on record, owing nothing.

    The rows keep their ids (a processor may refer to the invoice id), so nothing else changes.
    """
    conn.execute(insert(invoices).values({**snapshot.invoice, "status": "void"}))
    if snapshot.lines:
        conn.execute(insert(invoice_lines), snapshot.lines)
    if snapshot.charges:
        conn.execute(insert(charges), snapshot.charges)
    return invoice_record(conn, snapshot.invoice["pk"])


PENDING_REASON = "pending"


def add_pending_lines(
    conn: Connection,
    customer_pk: int,
    draft: InvoiceDraft,
    processor: str,
    now: int,
    base_url: str,
    entity_id: str | None = None,
) -> InvoiceRecord | None:
    """Keep lines for the next renewal invoice (Stripe's pending invoice items, ``*_next_cycle`` prorations).

    They wait as a ``draft`` invoice (reason ``pending``) of the plan until :func:`take_pending_lines`
    moves them onto the renewal or final invoice of that plan.
    """
    if not draft.lines:
        return None
    invoice = create_invoice(conn, customer_pk, draft, PENDING_REASON, processor, now, base_url, entity_id)
    set_invoice_status(conn, invoice.pk, "draft")
    return invoice_record(conn, invoice.pk)


def pending_lines(
    conn: Connection, customer_pk: int, plan_id: str, entity_id: str | None = None
) -> tuple[LineItem, ...]:
    """The pending lines of ``plan_id`` (in this scope), left where they are (previews, quotes)."""
    return _pending(conn, customer_pk, plan_id, entity_id, take=False)


def take_pending_lines(
    conn: Connection, customer_pk: int, plan_id: str, entity_id: str | None = None
) -> tuple[LineItem, ...]:
    """The pending lines of ``plan_id`` (in this scope), removed from the drafts that held them."""
    return _pending(conn, customer_pk, plan_id, entity_id, take=True)


def _pending(
    conn: Connection, customer_pk: int, plan_id: str, entity_id: str | None, take: bool
) -> tuple[LineItem, ...]:
    scope = invoices.c.entity_id.is_(None) if entity_id is None else invoices.c.entity_id == entity_id
    rows = conn.execute(
        select(invoices.c.pk, invoices.c.plan_ids)
        .where(
            invoices.c.customer_pk == customer_pk,
            invoices.c.status == "draft",
            invoices.c.reason == PENDING_REASON,
            scope,
        )
        .order_by(invoices.c.pk)
    ).all()
    pks = [r.pk for r in rows if list(r.plan_ids or []) == [plan_id]]
    if not pks:
        return ()
    lines = tuple(
        LineItem(
            kind=LineKind(row.kind),
            display_name=row.display_name,
            description=row.description,
            amount=int(row.amount),
            plan_id=row.plan_id,
            feature_id=row.feature_id,
            quantity=Decimal(row.quantity),
            period=Period(row.period_start, row.period_end) if row.period_start is not None else None,
        )
        for pk in pks
        for row in invoice_lines_of(conn, pk)
    )
    if not take:
        return lines
    conn.execute(delete(invoice_lines).where(invoice_lines.c.invoice_pk.in_(pks)))
    conn.execute(delete(invoices).where(invoices.c.pk.in_(pks)))
    return lines


def invoice_record(conn: Connection, invoice_pk: int) -> InvoiceRecord:
    row = conn.execute(select(invoices).where(invoices.c.pk == invoice_pk)).one()
    return InvoiceRecord(
        row.pk, row.id, row.status, row.total, row.currency, row.hosted_url, row.processor_id, row.created_at
    )


def invoice_by_id(conn: Connection, invoice_id: str) -> Any:
    return conn.execute(select(invoices).where(invoices.c.id == invoice_id)).first()


def invoice_lines_of(conn: Connection, invoice_pk: int) -> list[Any]:
    return list(
        conn.execute(
            select(invoice_lines)
            .where(invoice_lines.c.invoice_pk == invoice_pk)
            .order_by(invoice_lines.c.position)
        ).all()
    )


def customer_invoices(conn: Connection, customer_pk: int, limit: int = 50) -> list[InvoiceRecord]:
    rows = conn.execute(
        select(invoices)
        .where(invoices.c.customer_pk == customer_pk)
        .order_by(invoices.c.created_at.desc(), invoices.c.pk.desc())
        .limit(limit)
    ).all()
    return [
        InvoiceRecord(r.pk, r.id, r.status, r.total, r.currency, r.hosted_url, r.processor_id, r.created_at)
        for r in rows
    ]


def draft_to_json(draft: InvoiceDraft) -> list[dict[str, Any]]:
    """Lines of a draft as JSON (stored on checkout sessions so the page charges exactly these)."""
    return [
        {
            "kind": line.kind.value,
            "display_name": line.display_name,
            "description": line.description,
            "amount": line.amount,
            "plan_id": line.plan_id,
            "feature_id": line.feature_id,
            "quantity": str(line.quantity),
            "period": [line.period.start, line.period.end] if line.period else None,
        }
        for line in draft.lines
    ]


def draft_from_json(lines: list[dict[str, Any]], currency: str) -> InvoiceDraft:
    from reference_server.engine.billing.invoice import LineKind
    from reference_server.engine.billing.periods import Period

    return InvoiceDraft(
        tuple(
            LineItem(
                kind=LineKind(raw["kind"]),
                display_name=raw["display_name"],
                description=raw["description"],
                amount=int(raw["amount"]),
                plan_id=raw["plan_id"],
                feature_id=raw["feature_id"],
                quantity=Decimal(raw["quantity"]),
                period=Period(*raw["period"]) if raw.get("period") else None,
            )
            for raw in lines
        ),
        currency,
    )


@dataclass(frozen=True)
class SessionRecord:
    pk: int
    id: str
    kind: str
    customer_pk: int
    status: str
    currency: str
    amount: int
    lines: list[dict[str, Any]]
    action: dict[str, Any]
    success_url: str | None
    return_url: str | None
    pending_payment_method_pk: int | None
    invoice_pk: int | None
    expires_at: int

    @property
    def draft(self) -> InvoiceDraft:
        return draft_from_json(self.lines, self.currency)


def create_session(
    conn: Connection,
    kind: str,
    customer_pk: int,
    now: int,
    ttl_ms: int,
    draft: InvoiceDraft | None = None,
    action: dict[str, Any] | None = None,
    success_url: str | None = None,
    return_url: str | None = None,
    invoice_pk: int | None = None,
) -> str:
    prefix = {"checkout": "cs", "portal": "bps", "setup": "seti"}[kind]
    session_id = new_id(prefix)
    conn.execute(
        insert(billing_sessions).values(
            id=session_id,
            kind=kind,
            customer_pk=customer_pk,
            status="open",
            currency=draft.currency if draft else "usd",
            amount=draft.total if draft else 0,
            lines=draft_to_json(draft) if draft else [],
            action=action or {},
            success_url=success_url,
            return_url=return_url,
            invoice_pk=invoice_pk,
            created_at=now,
            expires_at=now + ttl_ms,
        )
    )
    return session_id


def load_session(conn: Connection, session_id: str, kind: str, lock: bool = False) -> SessionRecord | None:
    """A session by id; ``lock`` takes a row lock (PostgreSQL) so a double submit cannot pay twice."""
    query = select(billing_sessions).where(
        billing_sessions.c.id == session_id, billing_sessions.c.kind == kind
    )
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    return SessionRecord(
        row.pk,
        row.id,
        row.kind,
        row.customer_pk,
        row.status,
        row.currency,
        row.amount,
        list(row.lines or []),
        dict(row.action or {}),
        row.success_url,
        row.return_url,
        row.pending_payment_method_pk,
        row.invoice_pk,
        row.expires_at,
    )


def update_session(conn: Connection, session_pk: int, **values: Any) -> None:
    conn.execute(update(billing_sessions).where(billing_sessions.c.pk == session_pk).values(**values))


def tenant_invoice(conn: Connection, invoice_id: str, org_pk: int, env: str) -> Any:
    """The invoice (with its ``customer_id``) whose id or processor id is ``invoice_id`` among the
    environment's invoices (pending-lines drafts excluded); None: there is none."""
    return conn.execute(
        select(invoices, customers.c.id.label("customer_id"))
        .join(customers, customers.c.pk == invoices.c.customer_pk)
        .where(
            or_(invoices.c.id == invoice_id, invoices.c.processor_id == invoice_id),
            customers.c.org_pk == org_pk,
            customers.c.env == env,
            invoices.c.reason != "pending",
        )
        .order_by(invoices.c.pk)
        .limit(1)
    ).first()


def locked_invoice(conn: Connection, invoice_pk: int) -> Any:
    """The invoice row, locked ``FOR UPDATE`` on PostgreSQL."""
    query = select(invoices).where(invoices.c.pk == invoice_pk)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).one()


def clear_processor_id(conn: Connection, invoice_pk: int) -> None:
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(processor_id=None))


def set_hosted_url(conn: Connection, invoice_pk: int, url: str) -> None:
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(hosted_url=url))


def make_draft(conn: Connection, invoice_pk: int) -> None:
    """The invoice becomes a draft with no page to pay it yet."""
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(status="draft", hosted_url=None))


def invoice_status_reason(conn: Connection, invoice_pk: int) -> Any:
    """The invoice's ``status`` and ``reason``."""
    return conn.execute(select(invoices.c.status, invoices.c.reason).where(invoices.c.pk == invoice_pk)).one()


def listed_invoices(conn: Connection, customer_pk: int) -> list[Any]:
    """The customer's invoices as ``customer.invoices`` lists them, newest first, each with the
    ``processor_type`` it was imported with (None: made here)."""
    return list(
        conn.execute(
            select(invoices, imported_invoices.c.processor_type)
            .outerjoin(imported_invoices, imported_invoices.c.invoice_pk == invoices.c.pk)
            # Drafts holding pending lines for the next renewal are not invoices yet; an invoice-mode
            # draft (``invoice_mode.finalize: false``) is, listed as ``draft`` with no page to pay it.
            .where(
                invoices.c.customer_pk == customer_pk,
                or_(invoices.c.status != "draft", invoices.c.reason == INVOICE_REASON),
            )
            .order_by(invoices.c.created_at.desc(), invoices.c.pk.desc())
        ).all()
    )


def retryable_invoice_pks(conn: Connection, customer_pk: int) -> list[int]:
    """The customer's open invoices a new card collects again (renewals and the like), oldest first."""
    return list(
        conn.execute(
            select(invoices.c.pk)
            .where(
                invoices.c.customer_pk == customer_pk,
                invoices.c.status == "open",
                invoices.c.reason.in_(RETRYABLE_REASONS),
            )
            .order_by(invoices.c.pk)
        ).scalars()
    )


def has_retryable_invoice(conn: Connection, customer_pk: int) -> bool:
    still_open = conn.execute(
        select(invoices.c.pk)
        .where(
            invoices.c.customer_pk == customer_pk,
            invoices.c.status == "open",
            invoices.c.reason.in_(RETRYABLE_REASONS),
        )
        .limit(1)
    ).first()
    return still_open is not None
