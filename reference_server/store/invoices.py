"""The server's invoices (``invoices``, with their charge attempts in ``charges``): created with their
lines, paid, voided or kept as drafts, looked up by id, processor id or tenant, and listed.

The reference server keeps its own copy of every invoice even when Stripe is the processor, so the
portal, the API's invoice lists and the webhooks read one place.  Lines: :mod:`.invoice_lines`; lines
kept for the next renewal: :mod:`.pending_lines`; invoice-mode drafts: :mod:`.invoice_drafts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, Connection, Row, func, insert, or_, select, update

from autumn_sdk._generated.json_types import AttachInvoiceJson
from reference_server.engine.billing.invoice import InvoiceDraft
from reference_server.engine.billing.money import minor_to_json
from reference_server.store.ids import new_id
from reference_server.store.invoice_lines import insert_lines
from reference_server.store.tables.billing import (
    RETRYABLE_REASONS,
    charges,
    invoice_lines,
    invoices,
)
from reference_server.store.tables.core import customers

PENDING_REASON = "pending"
"""``reason`` of a draft holding lines for the next renewal (:mod:`.pending_lines`): no invoice yet."""


@dataclass(frozen=True)
class InvoiceRecord:
    """One ``invoices`` row."""

    pk: int
    id: str
    status: str  # draft | open | paid | void | uncollectible
    total: int
    currency: str
    hosted_url: str | None
    processor_id: str | None
    created_at: int
    customer_pk: int
    entity_id: str | None
    reason: str
    subtotal: int
    amount_paid: int
    credit_applied: int
    plan_ids: tuple[str, ...]
    processor: str
    paid_at: int | None
    net_terms_days: int | None = None
    due_at: int | None = None
    processor_metadata: dict[str, str] | None = None  # the caller's keys for the processor's invoice

    def to_api(self) -> AttachInvoiceJson:
        """The attach response's ``invoice`` object (total in major units; an invoice-mode invoice
        with its net terms, as :func:`net_terms_json` shows them)."""
        out: AttachInvoiceJson = {
            "status": self.status,
            "stripe_id": self.processor_id or self.id,
            "total": minor_to_json(self.total, self.currency),
            "currency": self.currency,
            "hosted_invoice_url": self.hosted_url,
            **net_terms_json(self.net_terms_days, self.due_at),
        }
        return out


class NetTermsJson(TypedDict, total=False):
    """An invoice-mode invoice's net terms (:func:`net_terms_json`): both keys, or none for an invoice
    without net terms; the ``net_terms_days`` / ``due_at`` keys of the generated invoice objects
    (``AttachInvoiceJson``)."""

    net_terms_days: int
    due_at: int | None


def net_terms_json(net_terms_days: int | None, due_at: int | None) -> NetTermsJson:
    """An invoice-mode invoice's net terms as every invoice object shows them (beyond the spec, whose
    invoice objects have no due date; Stripe's invoice has ``days_until_due`` and ``due_date``):
    ``net_terms_days`` and ``due_at`` (epoch ms, null while a draft).  Nothing for other invoices."""
    if net_terms_days is None:
        return {}
    return {"net_terms_days": net_terms_days, "due_at": due_at}


def _record(row: Row[Any]) -> InvoiceRecord:
    return InvoiceRecord(
        pk=int(row.pk),
        id=str(row.id),
        status=str(row.status),
        total=int(row.total),
        currency=str(row.currency),
        hosted_url=row.hosted_url,
        processor_id=row.processor_id,
        created_at=int(row.created_at),
        customer_pk=int(row.customer_pk),
        entity_id=row.entity_id,
        reason=str(row.reason),
        subtotal=int(row.subtotal),
        amount_paid=int(row.amount_paid or 0),
        credit_applied=int(row.credit_applied or 0),
        plan_ids=tuple(row.plan_ids or ()),
        processor=str(row.processor),
        paid_at=row.paid_at,
        net_terms_days=row.net_terms_days,
        due_at=row.due_at,
        processor_metadata=dict(row.processor_metadata) if row.processor_metadata else None,
    )


# writes ----------------------------------------------------------------------------------------------


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
    processor_metadata: dict[str, str] | None = None,
) -> InvoiceRecord:
    """Insert an open invoice with its lines; the hosted page lives at ``{base_url}/invoices/{id}``.
    ``processor_metadata``: the caller's metadata for the processor's invoice (an attach's)."""
    processor_metadata = dict(processor_metadata) if processor_metadata else None
    invoice_id = new_id("in")
    hosted_url = f"{base_url.rstrip('/')}/invoices/{invoice_id}"
    plan_ids = tuple(sorted({line.plan_id for line in draft.lines}))
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
            plan_ids=list(plan_ids),
            processor=processor,
            processor_id=processor_id,
            hosted_url=hosted_url,
            created_at=now,
            processor_metadata=processor_metadata,
        )
        .returning(invoices.c.pk)
    ).scalar_one()
    insert_lines(conn, pk, draft)
    return InvoiceRecord(
        pk=pk,
        id=invoice_id,
        status="open",
        total=draft.total,
        currency=draft.currency,
        hosted_url=hosted_url,
        processor_id=processor_id,
        created_at=now,
        customer_pk=customer_pk,
        entity_id=entity_id,
        reason=reason,
        subtotal=draft.total,
        amount_paid=0,
        credit_applied=0,
        plan_ids=plan_ids,
        processor=processor,
        paid_at=None,
        processor_metadata=processor_metadata,
    )


DAY_MS = 86_400_000


def set_net_terms(conn: Connection, invoice_pk: int, net_terms_days: int, opened_at: int | None) -> None:
    """Give an invoice-mode invoice its net terms; ``opened_at``: when it was finalized (its due date
    is that many days later), None for a draft (due that many days after it is finalized,
    :func:`~reference_server.store.invoice_drafts.finalize_draft`)."""
    due_at = None if opened_at is None else opened_at + net_terms_days * DAY_MS
    conn.execute(
        update(invoices)
        .where(invoices.c.pk == invoice_pk)
        .values(net_terms_days=net_terms_days, due_at=due_at)
    )


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


def clear_processor_id(conn: Connection, invoice_pk: int) -> None:
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(processor_id=None))


def set_hosted_url(conn: Connection, invoice_pk: int, url: str) -> None:
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(hosted_url=url))


def make_draft(conn: Connection, invoice_pk: int) -> None:
    """The invoice becomes a draft with no page to pay it yet."""
    conn.execute(update(invoices).where(invoices.c.pk == invoice_pk).values(status="draft", hosted_url=None))


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
    """A charge attempt on the invoice; returns its id."""
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


def charge_attempts(conn: Connection, invoice_pk: int) -> int:
    """How many charges the server recorded on the invoice."""
    return int(
        conn.execute(
            select(func.count()).select_from(charges).where(charges.c.invoice_pk == invoice_pk)
        ).scalar_one()
    )


def paying_payment_method_pk(conn: Connection, invoice_pk: int) -> int | None:
    """The payment method of the invoice's latest succeeded charge; None when unpaid or paid otherwise."""
    pk = conn.execute(
        select(charges.c.payment_method_pk)
        .where(charges.c.invoice_pk == invoice_pk, charges.c.status == "succeeded")
        .order_by(charges.c.pk.desc())
        .limit(1)
    ).scalar()
    return None if pk is None else int(pk)


# kept across a rollback ------------------------------------------------------------------------------


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


# one invoice -----------------------------------------------------------------------------------------


def invoice_record(conn: Connection, invoice_pk: int) -> InvoiceRecord:
    """The invoice (it must exist)."""
    return _record(conn.execute(select(invoices).where(invoices.c.pk == invoice_pk)).one())


def locked_invoice(conn: Connection, invoice_pk: int) -> InvoiceRecord:
    """The invoice, its row locked ``FOR UPDATE`` on PostgreSQL."""
    query = select(invoices).where(invoices.c.pk == invoice_pk)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return _record(conn.execute(query).one())


def invoice_by_id(conn: Connection, invoice_id: str, *, lock: bool = False) -> InvoiceRecord | None:
    """The invoice with the server's id ``invoice_id`` (None: none); ``lock`` holds the row
    (PostgreSQL) until the transaction ends."""
    query = select(invoices).where(invoices.c.id == invoice_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _record(row)


def invoice_exists(conn: Connection, invoice_id: str) -> bool:
    return conn.execute(select(invoices.c.pk).where(invoices.c.id == invoice_id)).first() is not None


def tenant_invoice(
    conn: Connection, invoice_id: str, org_pk: int, env: str
) -> tuple[InvoiceRecord, str] | None:
    """The invoice whose id or processor id is ``invoice_id`` among the environment's invoices
    (pending-lines drafts excluded), with its customer's id; None: there is none."""
    row = conn.execute(
        select(invoices, customers.c.id.label("customer_id"))
        .join(customers, customers.c.pk == invoices.c.customer_pk)
        .where(
            or_(invoices.c.id == invoice_id, invoices.c.processor_id == invoice_id),
            customers.c.org_pk == org_pk,
            customers.c.env == env,
            invoices.c.reason != PENDING_REASON,
        )
        .order_by(invoices.c.pk)
        .limit(1)
    ).first()
    return None if row is None else (_record(row), str(row.customer_id))


def invoice_paid_by(
    conn: Connection, org_pk: int, env: str, processor_ids: Sequence[str], invoice_id: str | None
) -> InvoiceRecord | None:
    """The organization's environment's invoice with ``invoice_id`` or one of ``processor_ids`` (the
    first by pk): the invoice a processor's payment pays."""
    match: ColumnElement[bool] = invoices.c.processor_id.in_(list(processor_ids))
    if invoice_id:
        match = or_(invoices.c.id == str(invoice_id), match)
    row = conn.execute(
        select(invoices)
        .join(customers, customers.c.pk == invoices.c.customer_pk)
        .where(match, customers.c.org_pk == org_pk, customers.c.env == env)
        .order_by(invoices.c.pk)
    ).first()
    return None if row is None else _record(row)


# a customer's invoices -------------------------------------------------------------------------------


def customer_invoices(conn: Connection, customer_pk: int, limit: int = 50) -> list[InvoiceRecord]:
    """The customer's latest invoices, newest first."""
    rows = conn.execute(
        select(invoices)
        .where(invoices.c.customer_pk == customer_pk)
        .order_by(invoices.c.created_at.desc(), invoices.c.pk.desc())
        .limit(limit)
    ).all()
    return [_record(r) for r in rows]


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
    """Whether the customer still has an open invoice a new card would collect (an unpaid renewal...)."""
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
