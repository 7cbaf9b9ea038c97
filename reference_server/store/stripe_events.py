"""Stripe events received by an organization (``stripe_events``: each applied once), and what applying
one reads and writes: the invoice a payment pays, the past-due state of the plans it bills, the checkout
sessions waiting on it, the customer a paid Stripe invoice belongs to.

:mod:`reference_server.processors.stripe.events` decides what an event does; every function here runs
in the caller's connection and transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, insert, or_, select, update

from reference_server.store.tables.billing import billing_sessions, invoices, subscription_billing
from reference_server.store.tables.core import customer_plans, customers, entities, organizations
from reference_server.store.tables.stripe import stripe_events

# events ----------------------------------------------------------------------------------------------


def org_pk_by_id(conn: Connection, org_id: str) -> Any:
    """The organization's pk (None when there is no such organization)."""
    return conn.execute(select(organizations.c.pk).where(organizations.c.id == org_id)).scalar()


def event_seen(conn: Connection, org_pk: int, event_id: str) -> bool:
    """Whether the organization's event was applied already."""
    seen = conn.execute(
        select(stripe_events.c.pk).where(
            stripe_events.c.org_pk == org_pk, stripe_events.c.event_id == event_id
        )
    ).first()
    return seen is not None


def record_event(conn: Connection, org_pk: int, event_id: str, event_type: str, received_at: int) -> None:
    """Remember an applied event; raises ``IntegrityError`` when a concurrent delivery did first."""
    conn.execute(
        insert(stripe_events).values(
            org_pk=org_pk, event_id=event_id, event_type=event_type, received_at=received_at
        )
    )


# invoices an event names -----------------------------------------------------------------------------


def invoice_paid_by(
    conn: Connection, org_pk: int, env: str, processor_ids: Sequence[str], invoice_id: str | None
) -> Row[Any] | None:
    """The organization's environment's invoice with ``invoice_id`` or one of ``processor_ids`` (the
    first by pk)."""
    match: ColumnElement[bool] = invoices.c.processor_id.in_(list(processor_ids))
    if invoice_id:
        match = or_(invoices.c.id == str(invoice_id), match)
    return conn.execute(
        select(invoices)
        .join(customers, customers.c.pk == invoices.c.customer_pk)
        .where(match, customers.c.org_pk == org_pk, customers.c.env == env)
        .order_by(invoices.c.pk)
    ).first()


def invoice_row(conn: Connection, invoice_pk: int) -> Row[Any]:
    return conn.execute(select(invoices).where(invoices.c.pk == invoice_pk)).one()


def invoice_exists(conn: Connection, invoice_id: str) -> bool:
    return conn.execute(select(invoices.c.pk).where(invoices.c.id == invoice_id)).first() is not None


def open_invoice_left(conn: Connection, customer_pk: int, reasons: Sequence[str]) -> bool:
    """Whether the customer still has an open invoice for one of ``reasons``."""
    still_open = conn.execute(
        select(invoices.c.pk).where(
            invoices.c.customer_pk == customer_pk,
            invoices.c.status == "open",
            invoices.c.reason.in_(reasons),
        )
    ).first()
    return still_open is not None


def waiting_checkout_sessions(conn: Connection, invoice_pk: int) -> list[str]:
    """The ids of checkout sessions still waiting on the invoice (open or requiring action)."""
    waiting = conn.execute(
        select(billing_sessions.c.id).where(
            billing_sessions.c.invoice_pk == invoice_pk,
            billing_sessions.c.kind == "checkout",
            billing_sessions.c.status.in_(("open", "requires_action")),
        )
    ).scalars()
    return [str(session_id) for session_id in list(waiting)]


def set_billed_past_due(
    conn: Connection,
    customer_pk: int,
    plan_ids: Sequence[str],
    entity_id: str | None,
    past_due: bool,
    now: int,
) -> None:
    """Set ``past_due`` of the active plan instances an invoice bills: its ``plan_ids``, on its entity
    or (``entity_id`` None) the customer itself."""
    query = select(customer_plans.c.pk).where(
        customer_plans.c.customer_pk == customer_pk,
        customer_plans.c.plan_id.in_(list(plan_ids)),
        customer_plans.c.status == "active",
    )
    if entity_id is None:
        billed = query.where(customer_plans.c.entity_pk.is_(None))
    else:
        entity = select(entities.c.pk).where(
            entities.c.customer_pk == customer_pk, entities.c.id == entity_id
        )
        billed = query.where(customer_plans.c.entity_pk.in_(entity))
    conn.execute(
        update(subscription_billing)
        .where(subscription_billing.c.customer_plan_pk.in_(billed))
        .values(past_due=past_due, updated_at=now)
    )


def stripe_customer_of(conn: Connection, org_pk: int, env: str, customer_id: str) -> Any:
    """The Stripe customer id saved for the organization's environment's customer (None if none)."""
    return conn.execute(
        select(customers.c.stripe_id).where(
            customers.c.org_pk == org_pk, customers.c.env == env, customers.c.id == customer_id
        )
    ).scalar()
