"""Mapping the core's catalogue and plan instances onto the billing engine's dataclasses."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal

from sqlalchemy import Connection

from autumn_sdk._generated.json_types import PlanItemProrationJson
from autumn_sdk._generated.models import AttachCustomize, CreateSchedulePhasePlanCustomize, FeatureQuantity
from reference_server.billing.license_seats import is_seat_key, links_for, stored_seat_ids, with_seats
from reference_server.engine.billing import (
    BasePrice,
    BillingMethod,
    FreeTrial,
    Interval,
    ItemPrice,
    OnDecrease,
    OnIncrease,
    PlanItem,
    Proration,
    Subscription,
    Tier,
    TierBehavior,
)
from reference_server.engine.billing import Plan as EnginePlan
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
    ItemPriceRecord,
    ItemPriceTierRecord,
    PlanItemRecord,
)


def engine_plan(plan: Plan, cat: Catalog) -> EnginePlan:
    """The plan version as the engine prices it, read from its typed records."""
    names = {fid: feature.name for fid, feature in cat.features.items() if feature.name}
    names.update({i["feature_id"]: i["license_plan_name"] for i in plan.items if "license_plan_name" in i})
    continuous = frozenset(
        fid for fid, feature in cat.features.items() if feature.type == "metered" and not feature.consumable
    )
    return EnginePlan(
        id=str(plan.id),
        name=str(plan.name or plan.id),
        price=engine_base_price(plan.price) if plan.price else None,
        items=tuple(
            engine_item(item, names.get(item["feature_id"]), item["feature_id"] in continuous)
            for item in plan.items or ()
        ),
        group=str(plan.group or ""),
        add_on=bool(plan.add_on),
        auto_enable=bool(plan.auto_enable),
        free_trial=engine_free_trial(plan.free_trial) if plan.free_trial else None,
        version=int(plan.version or 1),
    )


def engine_base_price(price: BasePriceRecord) -> BasePrice:
    return BasePrice(
        amount=to_decimal(price["amount"]),
        interval=Interval(price.get("interval", "month")),
        interval_count=int(price.get("interval_count") or 1),
    )


def engine_free_trial(trial: FreeTrialRecord) -> FreeTrial:
    """A stored free trial; a key a customized one left out (or sent as null) takes its default,
    except ``card_required``: only a missing one defaults to required."""
    return FreeTrial(
        duration_length=int(trial.get("duration_length") or 1),
        duration_type=str(trial.get("duration_type") or "month"),
        card_required=bool(trial.get("card_required", True)),
        on_end=str(trial.get("on_end") or "bill"),
    )


def engine_item(item: PlanItemRecord, feature_name: str | None = None, continuous: bool = False) -> PlanItem:
    price = item.get("price")
    proration = item.get("proration")
    return PlanItem(
        feature_id=str(item["feature_id"]),
        feature_name=feature_name,
        included=to_decimal(item.get("included") or 0),
        unlimited=bool(item.get("unlimited", False)),
        price=engine_item_price(price) if price else None,
        proration=engine_proration(proration) if proration else Proration(),
        continuous=continuous,
    )


def engine_item_price(price: ItemPriceRecord) -> ItemPrice:
    amount = price.get("amount")
    max_purchase = price.get("max_purchase")
    return ItemPrice(
        interval=Interval(price.get("interval", "month")),
        billing_method=BillingMethod(price.get("billing_method", "usage_based")),
        amount=None if amount is None else to_decimal(amount),
        tiers=tuple(engine_tier(tier) for tier in price.get("tiers") or ()),
        tier_behavior=TierBehavior(price.get("tier_behavior") or "graduated"),
        interval_count=int(price.get("interval_count") or 1),
        billing_units=to_decimal(price.get("billing_units") or 1),
        max_purchase=None if max_purchase is None else to_decimal(max_purchase),
    )


def engine_tier(tier: ItemPriceTierRecord) -> Tier:
    """A price tier; ``to`` "inf" (or missing) is the last tier's open end."""
    to = tier.get("to")
    flat_amount = tier.get("flat_amount")
    return Tier(
        to=None if to is None or to == "inf" else to_decimal(to),
        amount=to_decimal(tier.get("amount") or 0),
        flat_amount=None if flat_amount is None else to_decimal(flat_amount),
    )


def engine_proration(proration: PlanItemProrationJson) -> Proration:
    return Proration(
        on_increase=OnIncrease(proration.get("on_increase", "prorate_immediately")),
        on_decrease=OnDecrease(proration.get("on_decrease", "prorate_immediately")),
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
