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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import (
    MultiUpdatePreviewSubscriptionJson,
    PreviewAttachResponseJson,
    PreviewUpdateResponseJson,
)
from autumn_sdk._generated.models import AttachCustomizeUpsertLicense, AttachLicenseQuantity
from reference_server.billing.resolve import AttachRequest, UpdateRequest
from reference_server.errors import invalid, plan_not_found
from reference_server.service.subscriptions import expire_instance
from reference_server.store import licenses as store
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.instance_billing import stored_prepaid_quantities
from reference_server.store.licenses import SEAT_PREFIX, seat_key
from reference_server.store.plan_records import BasePriceRecord, ItemPriceRecord, PlanItemRecord


def is_seat_key(key: str) -> bool:
    return key.startswith(SEAT_PREFIX)


def without_seats(quantities: Mapping[str, Any]) -> dict[str, Any]:
    """``quantities`` without the paid pools (what the API shows as ``feature_quantities``)."""
    return {k: v for k, v in quantities.items() if not is_seat_key(k)}


Upserts = Mapping[str, store.LinkOverride | None]
"""``customize.upsert_licenses`` by license plan: the instance's new override, or None for a bare entry
(the license goes back to the plan version's link)."""


def _recurring(price: BasePriceRecord | ItemPriceRecord | None) -> tuple[str, int] | None:
    if price and price.get("interval") and price.get("interval") != "one_off":
        return str(price["interval"]), int(price.get("interval_count") or 1)
    return None


def _plan_interval(plan: Plan) -> tuple[str, int] | None:
    for price in [plan.price, *(i.get("price") for i in plan.items if not is_seat_key(str(i["feature_id"])))]:
        found = _recurring(price)
        if found is not None:
            return found
    return None


def parse_upserts(
    cat: Catalog, parent: Plan, entries: list[AttachCustomizeUpsertLicense] | None
) -> dict[str, store.LinkOverride | None]:
    """``customize.upsert_licenses`` checked as plans.create checks a link; keyed by license plan."""
    out: dict[str, store.LinkOverride | None] = {}
    for entry in entries or []:
        license_plan_id = entry.license_plan_id
        if license_plan_id in out:
            raise invalid(f"License plan {license_plan_id} appears twice in customize.upsert_licenses.")
        if license_plan_id == parent.id:
            raise invalid(f"A plan cannot be linked as a license to itself ({license_plan_id}).")
        license_plan = cat.plans.get(license_plan_id)
        if license_plan is None:
            raise plan_not_found(license_plan_id)
        if license_plan.archived:
            raise invalid(f"License plan {license_plan_id} is archived and cannot be linked.")
        if entry.prepaid_only is False:
            raise invalid(
                "License overflow billing (prepaid_only: false) is not yet available. "
                "Set prepaid_only to true."
            )
        # stored as the request's JSON (the link's price override): its ``BasePrice`` as sent
        custom = entry.customize
        customize = custom.model_dump(mode="json", exclude_unset=True) if custom is not None else {}
        price: BasePriceRecord | None = customize.get("price")
        included = entry.included
        if included is None and entry.prepaid_only is None and price is None:
            out[license_plan_id] = None  # a bare entry: back to the catalogue's link
            continue
        seat = _recurring(price if price is not None else license_plan.price)
        mine = _plan_interval(parent)
        if mine is not None and seat is not None and mine != seat:
            raise invalid(
                f"License plan {license_plan_id} bills {seat[0]} but {parent.id} bills "
                f"{mine[0]}. Billing intervals must match."
            )
        out[license_plan_id] = store.LinkOverride(
            license_plan_id,
            included,
            entry.prepaid_only,
            price,
        )
    return out


def merged_overrides(existing: Iterable[store.LinkOverride], upserts: Upserts) -> list[store.LinkOverride]:
    """An instance's overrides after ``upserts``: an entry replaces the license's override, a bare one
    drops it."""
    by_id = {o.license_plan_id: o for o in existing}
    for license_plan_id, override in upserts.items():
        by_id.pop(license_plan_id, None)
        if override is not None:
            by_id[license_plan_id] = override
    return list(by_id.values())


def links_for(
    conn: Connection, plan: Plan, instance_pk: int | None = None, upserts: Upserts | None = None
) -> list[store.EffectiveLink]:
    """The links a (new or existing) instance of ``plan`` offers, with ``upserts`` applied."""
    existing = store.overrides_of(conn, instance_pk) if instance_pk is not None else []
    return store.effective_links(store.links_of(conn, plan.pk), merged_overrides(existing, upserts or {}))


def seat_price(link: store.EffectiveLink, license_plan: Plan | None) -> BasePriceRecord | None:
    """The price of one paid seat: the customer's own (upserted) price, else the license plan's."""
    if link.price is not None:
        return link.price
    return license_plan.price if license_plan is not None and license_plan.price else None


def _seat_item(link: store.EffectiveLink, license_plan: Plan, price: BasePriceRecord) -> PlanItemRecord:
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


def with_seats(
    cat: Catalog, plan: Plan, license_plan_ids: Iterable[str], links: Iterable[store.EffectiveLink]
) -> Plan:
    """``plan`` with one prepaid seat item per named license of ``links`` that has a seat price."""
    wanted = set(license_plan_ids)
    if not wanted:
        return plan
    have = {str(item.get("feature_id")) for item in plan.items}
    extra: list[PlanItemRecord] = []
    for link in links:
        license_plan = cat.plans.get(link.license_plan_id)
        price = seat_price(link, license_plan)
        if (
            link.license_plan_id not in wanted
            or seat_key(link.license_plan_id) in have
            or license_plan is None
            or price is None
        ):
            continue
        extra.append(_seat_item(link, license_plan, price))
    return dataclasses.replace(plan, items=[*plan.items, *extra]) if extra else plan


def stored_seat_ids(quantities: Mapping[str, Any]) -> list[str]:
    """The license plans an instance's stored prepaid quantities hold paid seats of."""
    return [k.removeprefix(SEAT_PREFIX) for k in quantities if is_seat_key(k)]


def requested(
    cat: Catalog,
    plan: Plan,
    links: Iterable[store.EffectiveLink],
    entries: list[AttachLicenseQuantity] | None,
    *,
    assigned: Mapping[str, int] | None = None,
) -> dict[str, Decimal]:
    """``license_quantities`` as prepaid quantities keyed by seat key, checked against ``links``.

    ``assigned``: live assignments per license plan of the pool being resized (a pool may not shrink
    below them).
    """
    if not entries:
        return {}
    by_id = {link.license_plan_id: link for link in links}
    out: dict[str, Decimal] = {}
    for entry in entries:
        license_plan_id = entry.license_plan_id
        quantity = entry.quantity
        if seat_key(license_plan_id) in out:
            raise invalid(f"License plan {license_plan_id} appears twice in license_quantities.")
        link = by_id.get(license_plan_id)
        if link is None:
            raise invalid(f"License plan {license_plan_id} is not linked to plan {plan.id}.")
        if quantity < 0:
            raise invalid("license_quantities: quantity must be at least 0", "invalid_inputs")
        if quantity > link.included and seat_price(link, cat.plans.get(license_plan_id)) is None:
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
    counts: dict[str, int] = {}
    for license_plan_id in store.live_license_plan_ids(conn, parent_instance_pk):
        counts[license_plan_id] = counts.get(license_plan_id, 0) + 1
    return counts


def _stored_quantities(conn: Connection, instance_pk: int) -> dict[str, Any]:
    return dict(stored_prepaid_quantities(conn, instance_pk) or {})


def _upserts_of(params: AttachRequest | UpdateRequest) -> list[AttachCustomizeUpsertLicense] | None:
    return params.customize.upsert_licenses if params.customize is not None else None


@dataclass(frozen=True)
class Seats:
    """What an attach or update does to licenses: the plan with its seat items, the requested seat
    quantities, and the instance's own links to keep (None: the request leaves them as they are)."""

    plan: Plan
    quantities: dict[str, Decimal]
    overrides: list[store.LinkOverride] | None


def attach_seats(
    conn: Connection, cat: Catalog, plan: Plan, current_pk: int | None, params: AttachRequest
) -> Seats:
    """The attached plan with its paid seat items, the requested seat quantities and its own links.

    A seat item is added for each license bought beyond its included seats, and for each license the
    replaced plan (``current_pk``) holds paid seats of and this plan links too: those seats carry over
    at their count unless ``license_quantities`` names them.
    """
    entries = _upserts_of(params)
    upserts = parse_upserts(cat, plan, entries)
    links = links_for(conn, plan, None, upserts)
    by_id = {link.license_plan_id: link for link in links}
    assigned = live_assignments(conn, current_pk) if current_pk is not None else {}
    wanted = requested(cat, plan, links, params.license_quantities, assigned=assigned)
    carried = stored_seat_ids(_stored_quantities(conn, current_pk)) if current_pk is not None else []
    ids = [
        k.removeprefix(SEAT_PREFIX)
        for k, q in wanted.items()
        if q > by_id[k.removeprefix(SEAT_PREFIX)].included
    ]
    ids += [i for i in carried if i in by_id]
    seated = with_seats(cat, plan, ids, links)
    keys = {str(item.get("feature_id")) for item in seated.items}
    if carried:  # stated, so the switch is classified by what the customer will pay
        stored = _stored_quantities(conn, current_pk) if current_pk is not None else {}
        for license_plan_id in carried:
            key = seat_key(license_plan_id)
            if key in keys and key not in wanted:
                wanted[key] = Decimal(str(stored[key]))
    overrides = merged_overrides([], upserts) if entries else None
    return Seats(seated, {k: q for k, q in wanted.items() if k in keys}, overrides)


def update_seats(
    conn: Connection, cat: Catalog, plan: Plan, instance_pk: int, params: UpdateRequest
) -> Seats:
    """The updated instance's plan with seat items for its paid pools and the resized ones, the new
    quantities, and its own links after ``customize.upsert_licenses``.

    Every named license must be linked; a pool may not shrink below its live assignments.
    """
    entries = _upserts_of(params)
    upserts = parse_upserts(cat, plan, entries)
    links = links_for(conn, plan, instance_pk, upserts)
    wanted = requested(
        cat, plan, links, params.license_quantities, assigned=live_assignments(conn, instance_pk)
    )
    ids = [k.removeprefix(SEAT_PREFIX) for k in wanted]
    ids += stored_seat_ids(_stored_quantities(conn, instance_pk))
    bare = dataclasses.replace(plan, items=[i for i in plan.items if not is_seat_key(str(i["feature_id"]))])
    seated = with_seats(cat, bare, ids, links)
    keys = {str(item.get("feature_id")) for item in seated.items}
    overrides = merged_overrides(store.overrides_of(conn, instance_pk), upserts) if entries else None
    return Seats(seated, {k: q for k, q in wanted.items() if k in keys}, overrides)


def keep_links(conn: Connection, instance_pk: int, seats: Seats, previous_pk: int | None, now: int) -> None:
    """Store a new plan instance's own links: the request's, else those of the instance it replaces
    (a customization of the same plan keeps them)."""
    if seats.overrides is not None:
        store.save_overrides(conn, instance_pk, seats.overrides, now)
    elif previous_pk is not None:
        store.save_overrides(conn, instance_pk, store.overrides_of(conn, previous_pk), now)


def save_attach_links(
    conn: Connection, cat: Catalog, plan: Plan, created: list[int], params: AttachRequest, now: int
) -> None:
    """Store the attached instance's own links (``customize.upsert_licenses``), if the attach set any."""
    entries = _upserts_of(params)
    if entries and created:
        store.save_overrides(conn, created[0], merged_overrides([], parse_upserts(cat, plan, entries)), now)


@dataclass(frozen=True)
class ParkedSeat:
    assignment_pk: int
    license_plan_id: str
    seat_instance_pk: int


def park_seats(conn: Connection, instance_pk: int) -> list[ParkedSeat]:
    """Keep a parent instance's live seats out of its ending while a customization replaces it.

    Ending a parent ends the seats it gave out; a customization of the same plan keeps them (a
    customer's seats are stable across changes of its plan). Until :func:`unpark_seats` gives them to
    the replacing instance, each points at its own seat instance, which gives out no seats, so the
    ending parent finds none; both happen in the update's transaction.
    """
    rows = store.live_held_seats(conn, instance_pk)
    parked = [ParkedSeat(int(r.pk), r.license_plan_id, int(r.customer_plan_pk)) for r in rows]
    for seat in parked:
        store.set_assignment_parent(conn, seat.assignment_pk, seat.seat_instance_pk)
    return parked


def unpark_seats(conn: Connection, parked: list[ParkedSeat], parent_pk: int, plan_pk: int, now: int) -> None:
    """Give parked seats to the replacing instance; a seat of a license it no longer offers ends."""
    offered = {link.license_plan_id for link in store.instance_links(conn, parent_pk, plan_pk)}
    for seat in parked:
        kept = seat.license_plan_id in offered
        store.return_assignment(conn, seat.assignment_pk, parent_pk, None if kept else now)
        if not kept:
            status = store.instance_status(conn, seat.seat_instance_pk)
            if status == "active":
                expire_instance(conn, seat.seat_instance_pk, now)


Preview = TypeVar(
    "Preview", PreviewAttachResponseJson, PreviewUpdateResponseJson, MultiUpdatePreviewSubscriptionJson
)


def hide_seats(preview: Preview) -> Preview:
    """A preview body (or a multi update's subscription preview) without the paid pools in its plans'
    ``feature_quantities`` (they are no feature)."""
    for plan in [*preview["incoming"], *preview["outgoing"]]:
        plan["feature_quantities"] = [
            fq for fq in plan["feature_quantities"] if not is_seat_key(fq["feature_id"])
        ]
    return preview
