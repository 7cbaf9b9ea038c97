"""Mapping the core's catalogue and plan instances onto the billing engine's dataclasses."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal

from sqlalchemy import Connection

from autumn_sdk._generated.models import AttachCustomize, CreateSchedulePhasePlanCustomize, FeatureQuantity
from reference_server.billing.license_seats import is_seat_key, links_for, stored_seat_ids, with_seats
from reference_server.engine.billing import Plan as EnginePlan
from reference_server.engine.billing import Subscription, plan_from_api
from reference_server.engine.billing.money import to_decimal
from reference_server.service.plan_items import matches_item_filter
from reference_server.service.subscriptions import Instance
from reference_server.store.catalog import Catalog, Plan
from reference_server.store.customers import overage_settings
from reference_server.store.entities import entity_billing_controls
from reference_server.store.instance_billing import billing_row
from reference_server.store.plan_instances import feature_balances
from reference_server.store.plan_records import (
    BasePriceRecord,
    CustomPlanRecord,
    FreeTrialRecord,
    PlanItemRecord,
)


def engine_plan(plan: Plan, cat: Catalog) -> EnginePlan:
    names = {fid: feature.name for fid, feature in cat.features.items() if feature.name}
    names.update({i["feature_id"]: i["license_plan_name"] for i in plan.items if "license_plan_name" in i})
    continuous = frozenset(
        fid for fid, feature in cat.features.items() if feature.type == "metered" and not feature.consumable
    )
    return plan_from_api(
        {
            "id": plan.id,
            "name": plan.name,
            "price": plan.price,
            "items": plan.items,
            "group": plan.group,
            "add_on": plan.add_on,
            "auto_enable": plan.auto_enable,
            "free_trial": plan.free_trial,
            "version": plan.version,
        },
        names,
        continuous,
    )


def feature_quantities(entries: list[FeatureQuantity] | None) -> dict[str, Decimal]:
    """A request's ``feature_quantities`` as a mapping of feature id to total desired units."""
    return {fq.feature_id: to_decimal(fq.quantity) for fq in entries or () if fq.quantity is not None}


PlanCustomize = AttachCustomize | CreateSchedulePhasePlanCustomize
"""A request's ``customize`` of one plan (attach, update, multi-attach and schedule phases)."""


def is_customized(params: PlanCustomize | None) -> bool:
    """Whether a request's ``customize`` sets anything (an empty one customizes nothing)."""
    return params is not None and bool(params.model_dump(exclude_unset=True))


def customized_plan(plan: Plan, params: PlanCustomize | None) -> Plan:
    """The plan with ``customize`` applied (price, items or add/remove items, free trial).

    The customized plan is stored as JSON: ``customize`` is applied as the request's JSON."""
    customize = params.model_dump(mode="json", exclude_unset=True) if params is not None else None
    if not customize:
        return plan
    price: BasePriceRecord | None = copy.deepcopy(customize["price"]) if "price" in customize else plan.price
    items: list[PlanItemRecord] = copy.deepcopy(plan.items)
    if customize.get("items") is not None:
        items = copy.deepcopy(customize["items"])
    else:
        for flt in customize.get("remove_items") or ():
            items = [item for item in items if not matches_item_filter(item, flt)]
        items.extend(copy.deepcopy(customize.get("add_items") or []))
    free_trial: FreeTrialRecord | None = (
        copy.deepcopy(customize["free_trial"]) if "free_trial" in customize else plan.free_trial
    )
    return dataclasses.replace(plan, price=price, items=items, free_trial=free_trial)


def plan_snapshot(plan: Plan) -> CustomPlanRecord:
    """What ``subscription_billing.custom_plan`` stores for a customized plan."""
    items = [i for i in plan.items if not is_seat_key(str(i.get("feature_id")))]  # seats: not stored
    return {"price": plan.price, "items": items, "free_trial": plan.free_trial}


def instance_plan(conn: Connection, cat: Catalog, inst: Instance) -> Plan | None:
    """The plan an instance bills: the stored customized version, else the catalogue version."""
    plan = cat.plans_by_pk.get(inst.plan_pk)
    if plan is None:
        return None
    row = billing_row(conn, inst.pk)
    custom: CustomPlanRecord | None = row.custom_plan if row is not None else None
    if custom:
        plan = dataclasses.replace(
            plan,
            price=custom.get("price"),
            items=custom.get("items") or [],
            free_trial=custom.get("free_trial"),
        )
    paid_pools = stored_seat_ids(row.prepaid_quantities or {}) if row is not None else []
    # Its paid license seats bill as prepaid items (at the customer's own seat price, if upserted).
    return with_seats(cat, plan, paid_pools, links_for(conn, plan, inst.pk)) if paid_pools else plan


def instance_quantities(conn: Connection, inst: Instance) -> dict[str, Decimal]:
    row = billing_row(conn, inst.pk)
    if row is None:
        return {}
    return {fid: Decimal(str(q)) for fid, q in (row.prepaid_quantities or {}).items()}


def overage_unbilled(conn: Connection, inst: Instance) -> frozenset[str] | None:
    """Features whose usage overage is not invoiced for this instance; ``None``: none of them is billed.

    The customer's ``config.disable_overage_billing`` stops all of it; otherwise a spend limit entry
    with ``skip_overage_billing`` stops its feature's (an entity's entry beats the customer's).
    Usage tracking and resets are untouched: only the invoice lines go.
    """
    customer = overage_settings(conn, inst.customer_pk)
    if (customer.config or {}).get("disable_overage_billing"):
        return None
    layers = [customer.billing_controls or {}]
    if inst.entity_pk is not None:
        entity = entity_billing_controls(conn, inst.entity_pk)
        if entity is not None:
            layers.append(entity.billing_controls or {})
    skipped: dict[str, bool] = {}
    for layer in layers:  # the entity last, so its entries win
        for entry in layer.get("spend_limits") or []:
            if entry.get("feature_id"):
                skipped[entry["feature_id"]] = bool(entry.get("skip_overage_billing"))
    return frozenset(fid for fid, skip in skipped.items() if skip)


def engine_subscription(conn: Connection, cat: Catalog, inst: Instance) -> Subscription | None:
    """The instance as the engine sees it, with this period's usage of its usage-based items."""
    plan = instance_plan(conn, cat, inst)
    if plan is None:
        return None
    eplan = engine_plan(plan, cat)
    row = billing_row(conn, inst.pk)
    anchor = row.anchor_at if row is not None and row.anchor_at is not None else None
    if anchor is None:
        anchor = inst.current_period_start if inst.current_period_start is not None else inst.started_at
    usage: dict[str, Decimal] = {}
    usage_features = [item for item in eplan.items if item.usage_based]
    unbilled = overage_unbilled(conn, inst) if any(not i.continuous for i in usage_features) else frozenset()
    usage_features = [
        item
        for item in usage_features
        if item.continuous or (unbilled is not None and item.feature_id not in unbilled)
    ]
    if usage_features:
        rows = feature_balances(conn, inst.pk)
        for item in usage_features:
            overage = sum(
                (
                    max(Decimal(0), -to_decimal(float(r.balance)))
                    for r in rows
                    if r.feature_id == item.feature_id
                ),
                Decimal(0),
            )
            usage[item.feature_id] = item.included * Decimal(str(inst.quantity)) + overage
    return Subscription(
        plan=eplan,
        anchor=int(anchor),
        started_at=inst.started_at,
        period_start=inst.current_period_start,
        period_end=inst.current_period_end,
        prepaid_quantities=instance_quantities(conn, inst),
        usage=usage,
        trial_ends_at=inst.trial_ends_at,
        canceled_at=inst.canceled_at,
        expires_at=inst.expires_at,
        quantity=max(1, int(inst.quantity)),
    )
