"""SQL of licenses: plan license links, a customer's seat pools and their assignments.

A pool is (an active plan instance of the customer, one license link of that instance's plan
version); its seats are the link's ``included`` count and its usage the pool's live assignments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, insert, or_, select, update

from reference_server.store.plan_records import BasePriceRecord
from reference_server.store.tables.billing import subscription_billing
from reference_server.store.tables.core import customer_plans, entities
from reference_server.store.tables.licenses import customer_plan_licenses, license_assignments, plan_licenses

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
    return _paid(stored, license_plan_id, included)


def _paid(stored: dict[str, Any] | None, license_plan_id: str, included: int) -> int:
    """:func:`paid_seats` given the parent instance's stored prepaid quantities."""
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


@dataclass(frozen=True)
class LinkOverride:
    """One ``customize.upsert_licenses`` entry kept for a plan instance (None fields inherit)."""

    license_plan_id: str
    included: int | None = None
    prepaid_only: bool | None = None
    price: BasePriceRecord | None = None
    """The seat price for this customer (``customize.price`` as the request sent it); None: inherit."""


@dataclass(frozen=True)
class EffectiveLink:
    """A link as one plan instance has it: the version's link with the instance's override applied."""

    license_plan_id: str
    included: int
    prepaid_only: bool | None
    price: BasePriceRecord | None = None
    """The seat price for this customer; None: the license plan's own base price."""


def overrides_of(conn: Connection, instance_pk: int) -> list[LinkOverride]:
    rows = conn.execute(
        select(customer_plan_licenses)
        .where(customer_plan_licenses.c.customer_plan_pk == instance_pk)
        .order_by(customer_plan_licenses.c.position)
    )
    return [LinkOverride(r.license_plan_id, r.included, r.prepaid_only, r.price) for r in rows]


def save_overrides(conn: Connection, instance_pk: int, overrides: Iterable[LinkOverride], now: int) -> None:
    """The instance's own links become exactly ``overrides``."""
    conn.execute(
        delete(customer_plan_licenses).where(customer_plan_licenses.c.customer_plan_pk == instance_pk)
    )
    rows = [
        {
            "customer_plan_pk": instance_pk,
            "license_plan_id": o.license_plan_id,
            "included": o.included,
            "prepaid_only": o.prepaid_only,
            "price": o.price,
            "position": position,
            "created_at": now,
        }
        for position, o in enumerate(overrides)
    ]
    if rows:
        conn.execute(insert(customer_plan_licenses), rows)


NEW_LINK_INCLUDED = 1
"""``included`` of an upserted license that the plan version does not link (Autumn's default)."""


def effective_links(links: Iterable[LicenseLink], overrides: Iterable[LinkOverride]) -> list[EffectiveLink]:
    """The version's links with an instance's overrides applied; new licenses come after, in order."""
    by_id = {o.license_plan_id: o for o in overrides}
    out: list[EffectiveLink] = []
    for link in links:
        o = by_id.pop(link.license_plan_id, None)
        if o is None:
            out.append(EffectiveLink(link.license_plan_id, link.included, link.prepaid_only))
            continue
        out.append(
            EffectiveLink(
                link.license_plan_id,
                link.included if o.included is None else o.included,
                link.prepaid_only if o.prepaid_only is None else o.prepaid_only,
                o.price,
            )
        )
    for o in by_id.values():
        included = NEW_LINK_INCLUDED if o.included is None else o.included
        out.append(EffectiveLink(o.license_plan_id, included, o.prepaid_only, o.price))
    return out


def instance_links(conn: Connection, instance_pk: int, plan_pk: int) -> list[EffectiveLink]:
    """The links a plan instance offers: its version's, with its own overrides."""
    return effective_links(links_of(conn, plan_pk), overrides_of(conn, instance_pk))


def pools(conn: Connection, customer_pk: int, entity_pk: int | None = None) -> list[Pool]:
    """The customer's pools: its active customer-level plan instances' links, plus, when
    ``entity_pk`` is given, those of the plan instances attached to that entity."""
    scope: ColumnElement[bool] = customer_plans.c.entity_pk.is_(None)
    if entity_pk is not None:
        scope = or_(scope, customer_plans.c.entity_pk == entity_pk)
    return _pools(conn, [customer_pk], scope).get(customer_pk, [])


def pools_for(conn: Connection, customer_pks: list[int]) -> dict[int, list[Pool]]:
    """:func:`pools` (customer level) of several customers, in a fixed number of statements (list
    pages); customers without pools are left out."""
    if not customer_pks:
        return {}
    return _pools(conn, customer_pks, customer_plans.c.entity_pk.is_(None))


def _pools(conn: Connection, customer_pks: list[int], scope: ColumnElement[bool]) -> dict[int, list[Pool]]:
    """The pools of the customers' active plan instances within ``scope``: at most five statements
    whatever the number of customers, instances and links."""
    instances = conn.execute(
        select(
            customer_plans.c.pk,
            customer_plans.c.customer_pk,
            customer_plans.c.plan_pk,
            customer_plans.c.plan_id,
            customer_plans.c.entity_pk,
        )
        .where(customer_plans.c.customer_pk.in_(customer_pks), customer_plans.c.status == "active", scope)
        .order_by(customer_plans.c.pk)
    ).all()
    if not instances:
        return {}
    links_by_plan: dict[int, list[LicenseLink]] = {}
    for r in conn.execute(
        select(plan_licenses)
        .where(plan_licenses.c.plan_pk.in_(sorted({int(i.plan_pk) for i in instances})))
        .order_by(plan_licenses.c.plan_pk, plan_licenses.c.position)
    ):
        links_by_plan.setdefault(int(r.plan_pk), []).append(
            LicenseLink(r.license_plan_id, int(r.included), r.prepaid_only)
        )
    instance_pks = [int(i.pk) for i in instances]
    overrides_by_instance: dict[int, list[LinkOverride]] = {}
    for r in conn.execute(
        select(customer_plan_licenses)
        .where(customer_plan_licenses.c.customer_plan_pk.in_(instance_pks))
        .order_by(customer_plan_licenses.c.customer_plan_pk, customer_plan_licenses.c.position)
    ):
        overrides_by_instance.setdefault(int(r.customer_plan_pk), []).append(
            LinkOverride(r.license_plan_id, r.included, r.prepaid_only, r.price)
        )
    linked = [
        i for i in instances if links_by_plan.get(int(i.plan_pk)) or overrides_by_instance.get(int(i.pk))
    ]
    if not linked:
        return {}
    live: dict[tuple[int, str], int] = {}
    for r in conn.execute(
        select(
            license_assignments.c.parent_customer_plan_pk,
            license_assignments.c.license_plan_id,
            func.count().label("assigned"),
        )
        .where(
            license_assignments.c.customer_pk.in_(sorted({int(i.customer_pk) for i in linked})),
            license_assignments.c.ended_at.is_(None),
        )
        .group_by(license_assignments.c.parent_customer_plan_pk, license_assignments.c.license_plan_id)
    ):
        live[(int(r.parent_customer_plan_pk), r.license_plan_id)] = int(r.assigned)
    stored: dict[int, dict[str, Any] | None] = {
        int(r.customer_plan_pk): r.prepaid_quantities
        for r in conn.execute(
            select(subscription_billing.c.customer_plan_pk, subscription_billing.c.prepaid_quantities).where(
                subscription_billing.c.customer_plan_pk.in_([int(i.pk) for i in linked])
            )
        )
    }
    out: dict[int, list[Pool]] = {}
    for inst in linked:
        pk = int(inst.pk)
        for link in effective_links(
            links_by_plan.get(int(inst.plan_pk), []), overrides_by_instance.get(pk, [])
        ):
            out.setdefault(int(inst.customer_pk), []).append(
                Pool(
                    pk,
                    inst.plan_id,
                    inst.entity_pk,
                    link.license_plan_id,
                    link.included,
                    live.get((pk, link.license_plan_id), 0),
                    _paid(stored.get(pk), link.license_plan_id, link.included),
                )
            )
    return out


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


def active_parent_entity_pks(conn: Connection, customer_pk: int) -> set[int]:
    """The entities that hold an active plan of the customer (parents of entity-level pools)."""
    rows = conn.execute(
        select(customer_plans.c.entity_pk)
        .where(customer_plans.c.customer_pk == customer_pk, customer_plans.c.status == "active")
        .distinct()
    )
    return {r.entity_pk for r in rows if r.entity_pk is not None}


def instance_status(conn: Connection, instance_pk: int) -> str | None:
    """The plan instance's status (None: it is gone)."""
    status: str | None = conn.execute(
        select(customer_plans.c.status).where(customer_plans.c.pk == instance_pk)
    ).scalar_one_or_none()
    return status


def live_license_plan_ids(conn: Connection, parent_instance_pk: int) -> list[str]:
    """The license plan of each live seat assignment a parent plan instance gave out."""
    rows = conn.execute(
        select(license_assignments.c.license_plan_id).where(
            license_assignments.c.parent_customer_plan_pk == parent_instance_pk,
            license_assignments.c.ended_at.is_(None),
        )
    )
    return [row.license_plan_id for row in rows]


def live_held_seats(conn: Connection, parent_instance_pk: int) -> list[Row[Any, Any, Any]]:
    """The live assignments a parent gave out that hold a seat instance (``pk``, ``license_plan_id``,
    ``customer_plan_pk``)."""
    return list(
        conn.execute(
            select(
                license_assignments.c.pk,
                license_assignments.c.license_plan_id,
                license_assignments.c.customer_plan_pk,
            ).where(
                license_assignments.c.parent_customer_plan_pk == parent_instance_pk,
                license_assignments.c.ended_at.is_(None),
                license_assignments.c.customer_plan_pk.is_not(None),
            )
        ).all()
    )


def set_assignment_parent(conn: Connection, assignment_pk: int, parent_instance_pk: int) -> None:
    conn.execute(
        update(license_assignments)
        .where(license_assignments.c.pk == assignment_pk)
        .values(parent_customer_plan_pk=parent_instance_pk)
    )


def return_assignment(
    conn: Connection, assignment_pk: int, parent_instance_pk: int, ended_at: int | None
) -> None:
    """Give the assignment to ``parent_instance_pk``, live (``ended_at`` None) or ended."""
    conn.execute(
        update(license_assignments)
        .where(license_assignments.c.pk == assignment_pk)
        .values(parent_customer_plan_pk=parent_instance_pk, ended_at=ended_at)
    )
