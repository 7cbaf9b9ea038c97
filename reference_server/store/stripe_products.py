"""Stripe Products and Prices stored per plan version (``stripe_objects`` rows, see
:mod:`reference_server.store.stripe_objects`), and the plan versions an invoice line's price may come
from, for :mod:`reference_server.processors.stripe.catalog`.

Each runs in the caller's connection and transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from reference_server.store.catalog import Plan, plan_from_row
from reference_server.store.customer_lookup import customer_owner
from reference_server.store.stripe_objects import stripe_objects
from reference_server.store.tables.core import customer_plans, plans

OBJECT_KEY = ("org_pk", "env", "account_key", "plan_id", "plan_version", "price_key")
"""The columns naming one stored object (its unique key)."""


@dataclass(frozen=True)
class StoredObject:
    """A Product (``price_key`` empty) or Price created in Stripe for a plan version."""

    pk: int
    price_key: str
    stripe_id: str
    unit_amount: int | None
    currency: str | None
    recurring: str | None


def stored_objects(
    conn: Connection, org_pk: int, env: str, account_key: str, plan_id: str, version: int
) -> list[StoredObject]:
    """The objects stored for a plan version in one Stripe account."""
    rows = conn.execute(
        select(stripe_objects).where(
            stripe_objects.c.org_pk == org_pk,
            stripe_objects.c.env == env,
            stripe_objects.c.account_key == account_key,
            stripe_objects.c.plan_id == plan_id,
            stripe_objects.c.plan_version == version,
        )
    ).all()
    return [
        StoredObject(int(r.pk), str(r.price_key), str(r.stripe_id), r.unit_amount, r.currency, r.recurring)
        for r in rows
    ]


def insert_object(conn: Connection, values: dict[str, Any]) -> None:
    """Store a created object (``values``: the row); raises ``IntegrityError`` when its key is taken."""
    conn.execute(insert(stripe_objects).values(**values))


def object_stripe_id(conn: Connection, values: dict[str, Any]) -> str:
    """The Stripe id stored under the key of ``values`` (see :data:`OBJECT_KEY`)."""
    existing = conn.execute(
        select(stripe_objects.c.stripe_id).where(
            *(getattr(stripe_objects.c, k) == values[k] for k in OBJECT_KEY)
        )
    ).scalar_one()
    return str(existing)


def delete_object(conn: Connection, pk: int) -> None:
    conn.execute(delete(stripe_objects).where(stripe_objects.c.pk == pk))


@dataclass(frozen=True)
class OrgPlan:
    """A plan version with its organization (:class:`~reference_server.store.catalog.Plan` leaves the
    organization out; its Stripe objects are kept per organization)."""

    org_pk: int
    plan: Plan


def org_plan(conn: Connection, plan_pk: int) -> OrgPlan | None:
    """Plan version ``plan_pk`` with its organization (None when there is none)."""
    row = conn.execute(select(plans).where(plans.c.pk == plan_pk)).first()
    return None if row is None else OrgPlan(int(row.org_pk), plan_from_row(row))


def plan_version(conn: Connection, plan_pk: int) -> Plan:
    """Plan version ``plan_pk`` (it must exist): what :mod:`~reference_server.processors.stripe.catalog`
    makes a Product and Prices of."""
    return plan_from_row(conn.execute(select(plans).where(plans.c.pk == plan_pk)).one())


@dataclass(frozen=True)
class CustomerPlanVersions:
    """Every version of a plan in a customer's organization and environment
    (:func:`plan_versions_for`)."""

    org_pk: int
    versions: list[Plan]
    owned: list[int]
    """The plan pks of the customer's instances of the plan, newest first."""


def plan_versions_for(conn: Connection, customer_pk: int, plan_id: str) -> CustomerPlanVersions:
    """Every version of ``plan_id`` in the customer's organization and environment, and the plan pks
    of the customer's instances of it, newest first."""
    customer = customer_owner(conn, customer_pk)
    rows = conn.execute(
        select(plans).where(
            plans.c.org_pk == customer.org_pk, plans.c.env == customer.env, plans.c.id == plan_id
        )
    ).all()
    owned = conn.execute(
        select(customer_plans.c.plan_pk)
        .where(customer_plans.c.customer_pk == customer_pk, customer_plans.c.plan_id == plan_id)
        .order_by(customer_plans.c.pk.desc())
    ).scalars()
    return CustomerPlanVersions(customer.org_pk, [plan_from_row(r) for r in rows], [int(pk) for pk in owned])


def plans_of_products(
    conn: Connection, org_pk: int, env: str, account_key: str, product_ids: list[str]
) -> dict[str, str]:
    """The plan ids of the Stripe Products (``product_ids``) created for an organization's plans in one
    Stripe account, by Product id (Products it did not create are left out)."""
    if not product_ids:
        return {}
    rows = conn.execute(
        select(stripe_objects.c.stripe_id, stripe_objects.c.plan_id).where(
            stripe_objects.c.org_pk == org_pk,
            stripe_objects.c.env == env,
            stripe_objects.c.account_key == account_key,
            stripe_objects.c.price_key == "",
            stripe_objects.c.stripe_id.in_(product_ids),
        )
    ).all()
    return {str(r.stripe_id): str(r.plan_id) for r in rows}
