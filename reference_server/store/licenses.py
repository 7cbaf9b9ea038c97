"""SQL of licenses: plan license links, a customer's seat pools and their assignments.

A pool is (an active plan instance of the customer, one license link of that instance's plan
version); its seats are the link's ``included`` count and its usage the pool's live assignments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, or_, select, update

from reference_server.store.billing_tables import subscription_billing
from reference_server.store.license_tables import license_assignments, plan_licenses
from reference_server.store.tables import customer_plans, entities

SEAT_PREFIX = "license:"
"""Prefix of a paid pool's key among a parent instance's stored prepaid quantities."""


def seat_key(license_plan_id: str) -> str:
    return f"{SEAT_PREFIX}{license_plan_id}"


def paid_seats(conn: Connection, parent_instance_pk: int, license_plan_id: str, included: int) -> int:
    """Seats of a pool bought beyond its ``included`` ones (0 when none were bought)."""
    stored = conn.execute(
        select(subscription_billing.c.prepaid_quantities).where(
            subscription_billing.c.customer_plan_pk == parent_instance_pk
        )
    ).scalar_one_or_none()
    value = (stored or {}).get(seat_key(license_plan_id))
    if value is None:
        return 0
    return max(int(Decimal(str(value))) - included, 0)


@dataclass(frozen=True)
class LicenseLink:
    license_plan_id: str
    included: int
    prepaid_only: bool | None


@dataclass(frozen=True)
class Pool:
    parent_instance_pk: int
    parent_plan_id: str
    parent_entity_pk: int | None
    license_plan_id: str
    included: int
    assigned: int
    paid: int = 0
    """Seats bought beyond ``included`` (``license_quantities``)."""

    @property
    def granted(self) -> int:
        return self.included + self.paid


@dataclass(frozen=True)
class Assignment:
    pk: int
    id: str
    entity_pk: int
    entity_id: str | None
    parent_instance_pk: int
    license_plan_id: str
    instance_pk: int | None
    started_at: int
    ended_at: int | None


def links_of(conn: Connection, plan_pk: int) -> list[LicenseLink]:
    rows = conn.execute(
        select(plan_licenses).where(plan_licenses.c.plan_pk == plan_pk).order_by(plan_licenses.c.position)
    )
    return [LicenseLink(r.license_plan_id, int(r.included), r.prepaid_only) for r in rows]


def replace_links(conn: Connection, plan_pk: int, links: Iterable[LicenseLink], now: int) -> None:
    """The plan version's links become exactly ``links`` (in their order)."""
    conn.execute(delete(plan_licenses).where(plan_licenses.c.plan_pk == plan_pk))
    rows = [
        {
            "plan_pk": plan_pk,
            "license_plan_id": link.license_plan_id,
            "included": link.included,
            "prepaid_only": link.prepaid_only,
            "position": position,
            "created_at": now,
        }
        for position, link in enumerate(links)
    ]
    if rows:
        conn.execute(insert(plan_licenses), rows)


def pools(conn: Connection, customer_pk: int, entity_pk: int | None = None) -> list[Pool]:
    """The customer's pools: its active customer-level plan instances' links, plus, when
    ``entity_pk`` is given, those of the plan instances attached to that entity."""
    live = (
        select(
            license_assignments.c.parent_customer_plan_pk.label("parent"),
            license_assignments.c.license_plan_id.label("license"),
            func.count().label("assigned"),
        )
        .where(license_assignments.c.customer_pk == customer_pk, license_assignments.c.ended_at.is_(None))
        .group_by(license_assignments.c.parent_customer_plan_pk, license_assignments.c.license_plan_id)
        .subquery()
    )
    scope: ColumnElement[bool] = customer_plans.c.entity_pk.is_(None)
    if entity_pk is not None:
        scope = or_(scope, customer_plans.c.entity_pk == entity_pk)
    rows = conn.execute(
        select(
            customer_plans.c.pk,
            customer_plans.c.plan_id,
            customer_plans.c.entity_pk,
            plan_licenses.c.license_plan_id,
            plan_licenses.c.included,
            func.coalesce(live.c.assigned, 0).label("assigned"),
        )
        .join(plan_licenses, plan_licenses.c.plan_pk == customer_plans.c.plan_pk)
        .outerjoin(
            live,
            and_(
                live.c.parent == customer_plans.c.pk,
                live.c.license == plan_licenses.c.license_plan_id,
            ),
        )
        .where(customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "active", scope)
        .order_by(customer_plans.c.pk, plan_licenses.c.position)
    )
    return [
        Pool(
            r.pk,
            r.plan_id,
            r.entity_pk,
            r.license_plan_id,
            int(r.included),
            int(r.assigned),
            paid_seats(conn, r.pk, r.license_plan_id, int(r.included)),
        )
        for r in rows
    ]


def _assignment(r: Any) -> Assignment:
    return Assignment(
        pk=r.pk,
        id=r.id,
        entity_pk=r.entity_pk,
        entity_id=r.entity_public_id,
        parent_instance_pk=r.parent_customer_plan_pk,
        license_plan_id=r.license_plan_id,
        instance_pk=r.customer_plan_pk,
        started_at=int(r.started_at),
        ended_at=r.ended_at,
    )


def assignments(
    conn: Connection,
    customer_pk: int,
    *,
    entity_pks: list[int] | None = None,
    license_plan_id: str | None = None,
    active_only: bool = True,
) -> list[Assignment]:
    q = (
        select(license_assignments, entities.c.id.label("entity_public_id"))
        .join(entities, entities.c.pk == license_assignments.c.entity_pk)
        .where(license_assignments.c.customer_pk == customer_pk)
        .order_by(license_assignments.c.pk)
    )
    if entity_pks is not None:
        q = q.where(license_assignments.c.entity_pk.in_(entity_pks))
    if license_plan_id is not None:
        q = q.where(license_assignments.c.license_plan_id == license_plan_id)
    if active_only:
        q = q.where(license_assignments.c.ended_at.is_(None))
    return [_assignment(r) for r in conn.execute(q)]


def insert_assignment(
    conn: Connection,
    *,
    assignment_id: str,
    customer_pk: int,
    entity_pk: int,
    parent_instance_pk: int,
    license_plan_id: str,
    instance_pk: int,
    now: int,
) -> None:
    conn.execute(
        insert(license_assignments).values(
            id=assignment_id,
            customer_pk=customer_pk,
            entity_pk=entity_pk,
            parent_customer_plan_pk=parent_instance_pk,
            license_plan_id=license_plan_id,
            customer_plan_pk=instance_pk,
            started_at=now,
        )
    )


def end_assignment(conn: Connection, assignment_pk: int, ended_at: int) -> None:
    conn.execute(
        update(license_assignments)
        .where(license_assignments.c.pk == assignment_pk, license_assignments.c.ended_at.is_(None))
        .values(ended_at=ended_at)
    )


@dataclass(frozen=True)
class Stranded:
    """A live assignment whose parent or whose own plan instance is no longer active."""

    assignment_pk: int
    instance_pk: int | None
    instance_active: bool
    ended_at: int | None
    """When the parent (or the seat's own instance) ended, if known."""


def stranded(conn: Connection, customer_pk: int) -> list[Stranded]:
    parent = customer_plans.alias("parent")
    seat = customer_plans.alias("seat")
    rows = conn.execute(
        select(
            license_assignments.c.pk,
            license_assignments.c.customer_plan_pk,
            parent.c.status.label("parent_status"),
            parent.c.expires_at.label("parent_expires_at"),
            seat.c.status.label("seat_status"),
            seat.c.expires_at.label("seat_expires_at"),
        )
        .join(parent, parent.c.pk == license_assignments.c.parent_customer_plan_pk)
        .outerjoin(seat, seat.c.pk == license_assignments.c.customer_plan_pk)
        .where(
            license_assignments.c.customer_pk == customer_pk,
            license_assignments.c.ended_at.is_(None),
            (parent.c.status != "active") | seat.c.status.is_(None) | (seat.c.status != "active"),
        )
    )
    out = []
    for r in rows:
        seat_active = r.seat_status == "active"
        ended = r.parent_expires_at if r.parent_status != "active" else r.seat_expires_at
        out.append(Stranded(r.pk, r.customer_plan_pk, seat_active, ended))
    return out


def end_seats_of(conn: Connection, instance_pk: int, now: int) -> list[int]:
    """End the seats tied to a plan instance that has just ended: the seats its pools gave out, and
    the seat it provisioned itself.  Returns the still-active plan instances of the seats given out,
    which end with their parent."""
    live = license_assignments.c.ended_at.is_(None)
    held = conn.execute(
        select(license_assignments.c.customer_plan_pk)
        .join(customer_plans, customer_plans.c.pk == license_assignments.c.customer_plan_pk)
        .where(
            license_assignments.c.parent_customer_plan_pk == instance_pk,
            live,
            customer_plans.c.status == "active",
        )
    )
    seats = [int(r.customer_plan_pk) for r in held]
    conn.execute(
        update(license_assignments)
        .where(
            live,
            or_(
                license_assignments.c.parent_customer_plan_pk == instance_pk,
                license_assignments.c.customer_plan_pk == instance_pk,
            ),
        )
        .values(ended_at=now)
    )
    return seats
