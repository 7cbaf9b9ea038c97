"""A plan item as stored, from a request's item (in ``items`` or a variant's ``customize.add_items``):
defaults filled in, its price (amount or tiers), reset, proration and rollover checked against its
feature; and the key Autumn matches two items by."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from autumn_sdk._generated.json_types import (
    PlanItemFilterJson,
    PlanItemJson,
    PlanItemPriceJson,
    PlanItemResetJson,
    PlanItemRolloverJson,
)
from autumn_sdk._generated.models import PlanItemFilter, PlanItemParams, UpdatePlanVariantCustomizeAddItem
from reference_server.errors import feature_not_found, invalid
from reference_server.service.extra_fields import extra_field
from reference_server.store.catalog import Catalog
from reference_server.store.plan_records import (
    ItemPriceRecord,
    ItemPriceTierRecord,
    ItemResetRecord,
    ItemRolloverRecord,
    PlanItemRecord,
    PriceInterval,
    ResetInterval,
)

PlanItem = PlanItemParams | UpdatePlanVariantCustomizeAddItem
"""A plan item as a request gives it: in ``items``, or in a variant's ``customize.add_items``."""

ItemKey = tuple[
    str, Literal["prepaid", "usage_based"] | None, PriceInterval | ResetInterval | None, int | float | None
]
"""Autumn's match key of a plan item: feature, billing method, interval and interval count."""


def _as_sent(part: BaseModel) -> Any:
    """A part of the request's item stored as the JSON it was sent as (keys left out stay out, ``null``
    stays): a price tier (a flat-only tier has no ``amount``) and the proration settings."""
    return part.model_dump(mode="json", exclude_unset=True)


def normalize_item(item: PlanItem, cat: Catalog) -> PlanItemRecord:
    """An item as stored and returned: defaults filled in, validated against its feature."""
    fid = item.feature_id
    feature = cat.features.get(fid)
    if feature is None:
        raise feature_not_found(fid)
    if feature.type == "boolean":
        return {"feature_id": fid, "included": 0, "unlimited": False, "reset": None, "price": None}
    included = item.included or 0
    out: PlanItemRecord = {
        "feature_id": fid,
        "included": included,
        "unlimited": bool(item.unlimited),
        "reset": None,
        "price": None,
    }
    reset: ItemResetRecord | None = None
    if item.reset is not None and feature.consumable:
        reset = {"interval": item.reset.interval, "interval_count": item.reset.interval_count or 1}
        out["reset"] = reset
    price = item.price
    if price is not None:
        has_amount, has_tiers = price.amount is not None, bool(price.tiers)
        if has_amount == has_tiers:
            raise invalid("price: exactly one of amount or tiers must be given", "invalid_inputs")
        method = price.billing_method
        interval, interval_count = price.interval, price.interval_count or 1
        p: ItemPriceRecord = {
            "interval": interval,
            "interval_count": interval_count,
            "billing_units": price.billing_units or 1,
            "billing_method": method,
            "max_purchase": price.max_purchase,
        }
        if price.tiers:
            tiers: list[ItemPriceTierRecord] = [_as_sent(tier) for tier in price.tiers]
            p["tiers"] = tiers
            p["tier_behavior"] = price.tier_behavior or "graduated"
            first_to = price.tiers[0].to
            if first_to != "inf" and first_to is not None and float(first_to) <= included:
                raise invalid("price.tiers[0].to must be greater than included", "invalid_inputs")
        else:
            p["amount"] = price.amount
        if (
            reset
            and method != "prepaid"
            and (reset["interval"] != interval or reset.get("interval_count") != interval_count)
        ):
            raise invalid("reset.interval must match price.interval for usage-based prices", "invalid_inputs")
        if item.proration is not None and method == "usage_based" and feature.consumable:
            # Seats (non-consumable) prorate their usage-based price on changes; consumables bill usage.
            raise invalid("proration cannot be set on a usage_based price", "invalid_inputs")
        out["price"] = p
        if reset is None and feature.consumable and interval != "one_off":
            reset = {"interval": interval, "interval_count": interval_count}
            out["reset"] = reset
    if item.proration is not None:
        out["proration"] = _as_sent(item.proration)
    ro = item.rollover
    if ro is not None:
        if not feature.consumable:
            raise invalid("rollover is not allowed on a non-consumable feature", "invalid_product_item")
        if reset is None or reset["interval"] == "one_off":
            raise invalid("rollover requires a reset interval", "invalid_product_item")
        rollover: ItemRolloverRecord = {"max": ro.max, "expiry_duration_type": ro.expiry_duration_type}
        if ro.max_percentage is not None:
            rollover["max_percentage"] = ro.max_percentage
        if ro.expiry_duration_length is not None:
            rollover["expiry_duration_length"] = ro.expiry_duration_length
        out["rollover"] = rollover
    display = extra_field(item, "display")  # not in the spec; stored items carry it
    if display:
        out["display"] = display
    return out


def _reset_json(reset: ItemResetRecord) -> PlanItemResetJson:
    out: PlanItemResetJson = {"interval": reset["interval"]}
    interval_count = reset.get("interval_count")
    if interval_count is not None:
        out["interval_count"] = interval_count
    return out


def _answered_tiers(tiers: list[ItemPriceTierRecord]) -> list[Any]:
    """A price's tiers are answered as sent: a flat-only tier leaves ``amount`` out, which the spec's
    ``PlanItemPriceTierJson`` (``amount`` required) cannot say."""
    return list(tiers)


def _price_json(price: ItemPriceRecord) -> PlanItemPriceJson:
    """A catalogue item's price (:func:`normalize_item`'s: ``billing_units`` and ``interval_count``
    set, ``max_purchase`` present) as plans answer it."""
    out: PlanItemPriceJson = {
        "interval": price["interval"],
        "billing_units": price.get("billing_units") or 1,
        "billing_method": price["billing_method"],
        "max_purchase": price.get("max_purchase"),
    }
    interval_count = price.get("interval_count")
    if interval_count is not None:
        out["interval_count"] = interval_count
    amount = price.get("amount")
    if amount is not None:
        out["amount"] = amount
    additional = price.get("additional_currencies")
    if additional is not None:
        out["additional_currencies"] = additional
    tiers = price.get("tiers")
    if tiers is not None:
        out["tiers"] = _answered_tiers(tiers)
    tier_behavior = price.get("tier_behavior")
    if tier_behavior is not None:
        out["tier_behavior"] = tier_behavior
    return out


def _rollover_json(rollover: ItemRolloverRecord) -> PlanItemRolloverJson:
    out: PlanItemRolloverJson = {
        "max": rollover.get("max"),
        "expiry_duration_type": rollover["expiry_duration_type"],
    }
    if "max_percentage" in rollover:
        out["max_percentage"] = rollover["max_percentage"]
    expiry_duration_length = rollover.get("expiry_duration_length")
    if expiry_duration_length is not None:
        out["expiry_duration_length"] = expiry_duration_length
    return out


def item_json(item: PlanItemRecord) -> PlanItemJson:
    """A catalogue item (:func:`normalize_item`'s: ``included``, ``unlimited``, ``reset`` and ``price``
    always there) as plans answer it: its keys of the Plan answer."""
    reset, price = item.get("reset"), item.get("price")
    out: PlanItemJson = {
        "feature_id": item["feature_id"],
        "included": item.get("included") or 0,
        "unlimited": bool(item.get("unlimited")),
        "reset": _reset_json(reset) if reset is not None else None,
        "price": _price_json(price) if price is not None else None,
    }
    proration = item.get("proration")
    if proration is not None:
        out["proration"] = proration
    rollover = item.get("rollover")
    if rollover is not None:
        out["rollover"] = _rollover_json(rollover)
    if "display" in item:
        out["display"] = item["display"]
    return out


def item_key(item: PlanItemRecord) -> ItemKey:
    """Autumn's match key of a plan item: feature, billing method, interval and interval count."""
    price, reset = item.get("price"), item.get("reset")
    return (
        item["feature_id"],
        price.get("billing_method") if price else None,
        (price.get("interval") if price else None) or (reset.get("interval") if reset else None),
        (price.get("interval_count") if price else None) or (reset.get("interval_count") if reset else None),
    )


def matches_item_filter(item: PlanItemRecord, flt: PlanItemFilterJson) -> bool:
    """Whether ``item`` matches a ``remove_items`` filter (Autumn's ``PlanItemFilter``): every field the
    filter gives must match the item's match key; an item without an interval count has count 1, and
    ``interval`` matches the price's interval, else the reset's."""
    feature_id, method, interval, count = item_key(item)
    return all(
        expected is None or expected == actual
        for expected, actual in (
            (flt.get("feature_id"), feature_id),
            (flt.get("billing_method"), method),
            (flt.get("interval"), interval),
            (flt.get("interval_count"), count or 1),
        )
    )


def filter_json(flt: PlanItemFilter) -> PlanItemFilterJson:
    """A request's ``remove_items`` filter as :func:`matches_item_filter` reads it: the fields it gives."""
    out: PlanItemFilterJson = {}
    if flt.feature_id is not None:
        out["feature_id"] = flt.feature_id
    if flt.billing_method is not None:
        out["billing_method"] = flt.billing_method
    if flt.interval is not None:
        out["interval"] = flt.interval
    if flt.interval_count is not None:
        out["interval_count"] = flt.interval_count
    return out
