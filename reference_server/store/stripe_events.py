"""Stripe events received by an organization (``stripe_events``: each applied once), and the past-due
state of the plans an invoice a payment pays (or fails) bills.  The invoices and checkout sessions an
event names: :mod:`.invoices`, :mod:`.billing_sessions`.

:mod:`reference_server.processors.stripe.events` decides what an event does; every function here runs
in the caller's connection and transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert, select, update

from reference_server.store.tables.billing import subscription_billing
from reference_server.store.tables.core import customer_plans, entities, organizations
from reference_server.store.tables.stripe import stripe_events

# events ----------------------------------------------------------------------------------------------


def org_pk_by_id(conn: Connection, org_id: str) -> int | None:
    """The organization's pk (None when there is no such organization)."""
    pk = conn.execute(select(organizations.c.pk).where(organizations.c.id == org_id)).scalar()
    return None if pk is None else int(pk)


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


# what a payment changes -----------------------------------------------------------------------------


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
