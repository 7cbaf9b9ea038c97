"""Paid license seats: ``license_quantities`` on attach and update, billed through the prepaid engine.

A parent plan's license link offers ``included`` free seats of a license plan; ``license_quantities``
sets the total seats (included ones counted), and every seat beyond ``included`` is paid at the license
plan's base price. The billing engine already prices, prorates, renews and credits prepaid quantities,
so a paid pool is billed as one prepaid item of the parent instance: its key is
``license:<license_plan_id>`` in the instance's stored prepaid quantities, its price the license plan's
base price per seat. The item exists only for billing: it is added to the plan the engine sees, never
to the catalogue or to a stored customized plan, and it has no feature, so it grants no balance (the
seats themselves are the pool that ``licenses.attach`` assigns from).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from reference_server.errors import invalid
from reference_server.store import licenses as store
from reference_server.store.billing_tables import subscription_billing
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.license_tables import license_assignments
from reference_server.store.licenses import SEAT_PREFIX, seat_key


def is_seat_key(key: str) -> bool:
    return key.startswith(SEAT_PREFIX)


def without_seats(quantities: Mapping[str, Any]) -> dict[str, Any]:
    """``quantities`` without the paid pools (what the API shows as ``feature_quantities``)."""
    return {k: v for k, v in quantities.items() if not is_seat_key(k)}


def _seat_item(link: store.LicenseLink, license_plan: Plan) -> dict[str, Any]:
    price = license_plan.price or {}
    return {
        "feature_id": seat_key(link.license_plan_id),
        "included": link.included,
        "price": {
            "amount": price.get("amount", 0),
            "interval": price.get("interval") or "month",
            "interval_count": int(price.get("interval_count") or 1),
            "billing_method": "prepaid",
            "billing_units": 1,
        },
        "license_plan_name": license_plan.name or link.license_plan_id,
    }


def with_seats(conn: Connection, cat: Catalog, plan: Plan, license_plan_ids: Iterable[str]) -> Plan:
    """``plan`` with one prepaid seat item per named license it links to a priced license plan."""
    wanted = set(license_plan_ids)
    if not wanted:
        return plan
    have = {str(item.get("feature_id")) for item in plan.items}
    extra: list[dict[str, Any]] = []
    for link in store.links_of(conn, plan.pk):
        license_plan = cat.plans.get(link.license_plan_id)
        if (
            link.license_plan_id not in wanted
            or seat_key(link.license_plan_id) in have
            or license_plan is None
            or not license_plan.price
        ):
            continue
        extra.append(_seat_item(link, license_plan))
    return dataclasses.replace(plan, items=[*plan.items, *extra]) if extra else plan


def stored_seat_ids(quantities: Mapping[str, Any]) -> list[str]:
    """The license plans an instance's stored prepaid quantities hold paid seats of."""
    return [k.removeprefix(SEAT_PREFIX) for k in quantities if is_seat_key(k)]


def requested(
    conn: Connection,
    cat: Catalog,
    plan: Plan,
    entries: list[dict[str, Any]] | None,
    *,
    assigned: Mapping[str, int] | None = None,
) -> dict[str, Decimal]:
    """``license_quantities`` as prepaid quantities keyed by seat key, checked against ``plan``'s links.

    ``assigned``: live assignments per license plan of the pool being resized (a pool may not shrink
    below them).
    """
    if not entries:
        return {}
    links = {link.license_plan_id: link for link in store.links_of(conn, plan.pk)}
    out: dict[str, Decimal] = {}
    for entry in entries:
        license_plan_id = str(entry["license_plan_id"])
        quantity = int(entry["quantity"])
        if seat_key(license_plan_id) in out:
            raise invalid(f"License plan {license_plan_id} appears twice in license_quantities.")
        link = links.get(license_plan_id)
        if link is None:
            raise invalid(f"License plan {license_plan_id} is not linked to plan {plan.id}.")
        if quantity < 0:
            raise invalid("license_quantities: quantity must be at least 0", "invalid_inputs")
        license_plan = cat.plans.get(license_plan_id)
        if quantity > link.included and (license_plan is None or not license_plan.price):
            raise invalid(
                f"License plan {license_plan_id} has no price, so no seats beyond the "
                f"{link.included} included can be bought."
            )
        live = (assigned or {}).get(license_plan_id, 0)
        if quantity < live:
            raise invalid(
                f"Cannot reduce {license_plan_id} to {quantity} seats: {live} are assigned. "
                "Release seats first."
            )
        out[seat_key(license_plan_id)] = Decimal(quantity)
    return out


def live_assignments(conn: Connection, parent_instance_pk: int) -> dict[str, int]:
    """Live seat assignments per license plan of one parent plan instance."""
    rows = conn.execute(
        select(license_assignments.c.license_plan_id).where(
            license_assignments.c.parent_customer_plan_pk == parent_instance_pk,
            license_assignments.c.ended_at.is_(None),
        )
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.license_plan_id] = counts.get(row.license_plan_id, 0) + 1
    return counts


def _stored_quantities(conn: Connection, instance_pk: int) -> dict[str, Any]:
    stored = conn.execute(
        select(subscription_billing.c.prepaid_quantities).where(
            subscription_billing.c.customer_plan_pk == instance_pk
        )
    ).scalar_one_or_none()
    return dict(stored or {})


def attach_seats(
    conn: Connection,
    cat: Catalog,
    plan: Plan,
    current_pk: int | None,
    entries: list[dict[str, Any]] | None,
) -> tuple[Plan, dict[str, Decimal]]:
    """The attached plan with its paid seat items, and the requested seat quantities.

    A seat item is added for each license bought beyond its included seats, and for each license the
    replaced plan (``current_pk``) holds paid seats of and this plan links too: those seats carry over
    at their count unless ``license_quantities`` names them (the engine keeps a previous prepaid
    quantity the request does not set).
    """
    assigned = live_assignments(conn, current_pk) if current_pk is not None else {}
    wanted = requested(conn, cat, plan, entries, assigned=assigned)
    links = {link.license_plan_id: link for link in store.links_of(conn, plan.pk)}
    carried = stored_seat_ids(_stored_quantities(conn, current_pk)) if current_pk is not None else []
    ids = [
        key.removeprefix(SEAT_PREFIX)
        for key, quantity in wanted.items()
        if quantity > links[key.removeprefix(SEAT_PREFIX)].included
    ]
    ids += [i for i in carried if i in links]
    seated = with_seats(conn, cat, plan, ids)
    keys = {str(item.get("feature_id")) for item in seated.items}
    if carried:  # stated, so the switch is classified by what the customer will pay
        stored = _stored_quantities(conn, current_pk) if current_pk is not None else {}
        for license_plan_id in carried:
            key = seat_key(license_plan_id)
            if key in keys and key not in wanted:
                wanted[key] = Decimal(str(stored[key]))
    return seated, {k: q for k, q in wanted.items() if k in keys}


def hide_seats(preview: dict[str, Any]) -> dict[str, Any]:
    """A preview body without the paid pools in its plans' ``feature_quantities`` (they are no feature)."""
    for side in ("incoming", "outgoing"):
        for plan in preview.get(side) or []:
            if isinstance(plan, dict) and plan.get("feature_quantities"):
                plan["feature_quantities"] = [
                    fq for fq in plan["feature_quantities"] if not is_seat_key(str(fq.get("feature_id")))
                ]
    return preview


def update_seats(
    conn: Connection, cat: Catalog, plan: Plan, instance_pk: int, entries: list[dict[str, Any]] | None
) -> tuple[Plan, dict[str, Decimal]]:
    """The updated instance's plan with seat items for the resized pools, and their new quantities.

    Every named license must be linked by the plan; a pool may not shrink below its live assignments.
    """
    wanted = requested(conn, cat, plan, entries, assigned=live_assignments(conn, instance_pk))
    seated = with_seats(conn, cat, plan, [k.removeprefix(SEAT_PREFIX) for k in wanted])
    keys = {str(item.get("feature_id")) for item in seated.items}
    return seated, {k: q for k, q in wanted.items() if k in keys}
